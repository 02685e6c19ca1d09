package projections

import "github.com/recledger/recledger/ledger"

// agentOf returns the agent of a user, creating its state on first use.
func (s *State) agentOf(user string) *agent {
	a := s.agents[user]
	if a == nil {
		a = &agent{}
		s.agents[user] = a
		if m := s.members[user]; m != nil {
			m.agent = a
		}
	}
	return a
}

// extensionOf is the extension a user is associated with now: the login
// extension, else its configured default unless it was detached or another
// agent is logged in there; "" when none.
func (s *State) extensionOf(user string) string {
	return s.extensionIn(user, s.memberOf(user))
}

// extensionIn is extensionOf with user's member m.
func (s *State) extensionIn(user string, m *member) string {
	a := m.agent
	if a != nil && a.LoggedIn {
		return a.Ext
	}
	if a != nil && a.Detached {
		return ""
	}
	def := m.u.Extension
	if def == "" || s.userAt(def) != user {
		return "" // someone logged in there, or a user before it by id shares it
	}
	return def
}

// userAt is the agent associated with an extension now, or "": the agent
// logged in there, else the first (by user id) configured with it as default
// extension that is neither logged in elsewhere nor detached.
func (s *State) userAt(ext string) string {
	if u, ok := s.logins[ext]; ok {
		return u
	}
	for _, u := range s.defaults[ext] {
		if a := s.agents[u]; a != nil && (a.LoggedIn || a.Detached) {
			continue
		}
		return u
	}
	return ""
}

// login associates user with ext (hot desking): every other agent on ext
// is detached, the one logged in there and each whose default extension
// it is (not only the one the extension would go to: whoever logs in,
// the others stay without it once user moves on), and the user's last
// call is reset.
func (s *State) login(user, ext string, eff *Effect) {
	if other, ok := s.logins[ext]; ok && other != user {
		s.detach(other, ext, eff)
	}
	for _, other := range s.defaults[ext] {
		if o := s.agents[other]; other == user || o != nil && (o.LoggedIn || o.Detached) {
			continue
		}
		s.detach(other, ext, eff)
	}
	a := s.agentOf(user)
	if a.LoggedIn && a.Ext != ext {
		delete(s.logins, a.Ext)
	}
	a.LoggedIn, a.Ext, a.Detached = true, ext, false
	s.logins[ext] = user
	a.LastCall = nil
	if !s.quiet {
		eff.Changes = append(eff.Changes, user+" login "+ext)
	}
}

// detach leaves user without an extension until it logs in: another
// agent logged in on ext.
func (s *State) detach(user, ext string, eff *Effect) {
	o := s.agentOf(user)
	s.leave(o)
	o.Detached = true
	eff.Users = append(eff.Users, user)
	if !s.quiet {
		eff.Changes = append(eff.Changes, user+" detached from "+ext)
	}
}

// leave takes agent a off the extension it is logged in on, if any.
func (s *State) leave(a *agent) {
	if a.LoggedIn { // it holds that extension's login
		delete(s.logins, a.Ext)
	}
	a.LoggedIn, a.Ext = false, ""
}

// logout detaches user from its extension. Its active calls stop being
// recorded now (their contacts close, saved per workflow) and stop being
// its calls; the last of them that was recorded becomes its last call.
func (s *State) logout(e *ledger.Envelope, user string, eff *Effect) {
	a := s.agentOf(user)
	now := eventTime(e)
	for _, k := range a.Calls {
		c := s.calls[k]
		if c == nil {
			continue
		}
		if c.Contact != "" {
			s.closeContact(e, c, now, ledger.EndedByLogout, user, eff)
		}
		if c.LastContact != "" {
			a.setLastCall(c)
		}
		c.User = ""
	}
	a.Calls = nil
	ext := s.extensionOf(user)
	s.leave(a)
	a.Detached = true
	if !s.quiet {
		eff.Changes = append(eff.Changes, user+" logout "+ext)
	}
}

// removeCall drops a call key from its agent's list.
func (a *agent) removeCall(k string) {
	for i, x := range a.Calls {
		if x == k {
			a.Calls = append(a.Calls[:i], a.Calls[i+1:]...)
			return
		}
	}
}

// setLastCall makes c the agent's last call. The LastCall struct is the
// agent's own (queries copy it), so it is reused.
func (a *agent) setLastCall(c *call) {
	if a.LastCall == nil {
		a.LastCall = new(ledger.LastCall)
	}
	*a.LastCall = ledger.LastCall{CallID: c.CallID, ContactID: c.LastContact}
}
