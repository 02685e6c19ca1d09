package projections

import "github.com/recledger/recledger/ledger"

// member is a configured user as the fold reads it on each of its events:
// its configuration, its team's workflow, its Effect.Users list and its
// agent state, found by one lookup instead of one each (map lookups were
// a fifth of a fold). The members are rebuilt with the configuration
// (rebuildCaches) and are not part of the checkpoint.
//
// agent is the user's entry of State.agents, nil while it has none:
// agentOf, which alone adds entries, sets it, and rebuildCaches reads it
// again after a checkpoint replaced the agents.
type member struct {
	u     ledger.User
	team  ledger.Team
	users []string // []string{id}, capacity 1: appending copies
	agent *agent
}

// buildMembers makes the member of every configured user.
func (s *State) buildMembers() {
	s.members = make(map[string]*member, len(s.cfg.Users))
	for id, u := range s.cfg.Users {
		s.members[id] = &member{u: u, team: s.cfg.Teams[u.Team], users: []string{id}, agent: s.agents[id]}
	}
}

// memberOf is user's member; for a user no longer configured (an
// association the configuration has dropped since), a member of its own
// with the zero configuration, as the maps would have answered.
func (s *State) memberOf(user string) *member {
	if m := s.members[user]; m != nil {
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
