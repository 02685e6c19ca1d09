package projections

import "github.com/recledger/recledger/ledger"

// member is a configured user as the fold reads it on each of its events:
// its configuration, its team's workflow, its Effect.Users list and its
// agent state, found by one lookup instead of one each (map lookups were
// a fifth of a fold). A user's member is made at its first event after
// a configuration change (State.member), not for every user at each
// change: a site configured user by user would otherwise make n² of
// them. Members are not part of the checkpoint.
//
// agent is the user's entry of State.agents, nil while it has none:
// agentOf, which alone adds entries, sets it; a checkpoint that replaces
// the agents resets the members (rebuildCaches).
type member struct {
	u     ledger.User
	team  ledger.Team
	users []string // []string{id}, capacity 1: appending copies
	agent *agent
}

// resetMembers forgets every member, after the configuration changed.
func (s *State) resetMembers() {
	if s.members == nil {
		s.members = map[string]*member{}
		return
	}
	clear(s.members)
}

// member is the member of user, nil for a user not configured.
func (s *State) member(user string) *member {
	if m := s.members[user]; m != nil {
		return m
	}
	u, ok := s.cfg.Users[user]
	if !ok {
		return nil
	}
	m := &member{u: u, team: s.cfg.Teams[u.Team], users: []string{user}, agent: s.agents[user]}
	s.members[user] = m
	return m
}

// memberOf is user's member; for a user no longer configured (an
// association the configuration has dropped since), a member of its own
// with the zero configuration, as the maps would have answered.
func (s *State) memberOf(user string) *member {
	if m := s.member(user); m != nil {
		return m
	}
	return &member{team: s.team(""), users: []string{user}, agent: s.agents[user]}
}

// agentIn is m's agent state (user's), made on first use.
func (s *State) agentIn(user string, m *member) *agent {
	if m.agent == nil {
		m.agent = s.agentOf(user)
	}
	return m.agent
}
