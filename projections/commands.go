package projections

import (
	"strconv"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// cmdCtx is one command being applied.
type cmdCtx struct {
	e    *ledger.Envelope
	d    *ledger.Command
	user string
	u    ledger.User
	m    *member // user's
	r    *ledger.CommandResult
	eff  Effect // what command returns; r is its Result
	now  ledger.Time
}

func (x *cmdCtx) outcome(outcome, reason string) {
	x.r.Outcome, x.r.Reason = outcome, reason
}

// on records the target call in the result.
func (s *State) on(x *cmdCtx, c *call) {
	x.r.CallID = c.CallID
	x.r.ContactID = c.Contact
	if c.Contact == "" && c.Deleted {
		x.r.ContactID = c.LastContact
	}
	x.r.Recording = s.callState(c)
}

// appliedOn answers x "applied" on call c: the outcome, the change line
// (joined from parts, and only when the fold is not quiet, so a quiet fold
// builds no strings) and the call, contact and state the answer names.
func (s *State) appliedOn(x *cmdCtx, c *call, change ...string) {
	x.outcome(ledger.OutcomeApplied, "")
	if !s.quiet && len(change) > 0 {
		x.eff.Changes = append(x.eff.Changes, strings.Join(change, ""))
	}
	s.on(x, c)
}

// command applies one Recording Controls command.
func (s *State) command(e *ledger.Envelope, d *ledger.Command) Effect {
	x := cmdCtx{e: e, d: d, now: eventTime(e)}
	s.commandIn(&x)
	return x.eff
}

// commandIn applies the command of x; x stays on command's stack.
func (s *State) commandIn(x *cmdCtx) {
	e, d := x.e, x.d
	name := ledger.CanonicalCommand(d.Command)
	var r *ledger.CommandResult
	if s.noResult {
		r = &s.result // the rules still read and write it; nobody else does
		*r = ledger.CommandResult{Command: name, Seq: e.Seq, UserID: d.SenderID, Extension: d.Extension}
	} else {
		r = s.newResult()
		*r = ledger.CommandResult{Command: name, EventID: s.eventID(e), Seq: e.Seq, UserID: d.SenderID, Extension: d.Extension}
		x.eff.Result = r
	}
	x.r = r
	if name == "" {
		r.Command = d.Command
		x.outcome(ledger.OutcomeRejected, ledger.ReasonUnknownCommand)
		r.Message = "unknown command " + d.Command
		return
	}
	if d.Invalid != "" {
		x.outcome(ledger.OutcomeRejected, d.Invalid)
		r.Message = d.Message
		return
	}
	user := d.SenderID
	if user == "" && d.Extension != "" && name != ledger.CmdLogin {
		user = s.userAt(d.Extension)
	}
	m := s.member(user)
	if m == nil {
		x.outcome(ledger.OutcomeRejected, ledger.ReasonUnknownUser)
		switch {
		case d.SenderID != "":
			r.Message = "no configured user " + strconv.Quote(d.SenderID)
		case name == ledger.CmdLogin && d.Extension != "":
			// API.md: login's extension is where the agent logs in;
			// only the other commands find their agent by it.
			r.Message = "login names no sender_id (senderId): its extension is where the agent logs in, not who the agent is"
		case d.Extension != "":
			r.Message = "no user is at extension " + strconv.Quote(d.Extension)
		default:
			// Most often a body that was not read: a form is read as
			// application/x-www-form-urlencoded, JSON as text/json,
			// application/json, or any body starting with '{'.
			r.Message = "the request names no sender_id (senderId) and no extension; a body is read as a form or as a JSON object only"
		}
		return
	}
	u := m.u
	x.user, x.u, x.m = user, u, m
	r.UserID = user
	x.eff.Users = m.users
	if d.PeripheralID != "" && u.PeripheralID != "" && d.PeripheralID != u.PeripheralID {
		x.outcome(ledger.OutcomeRejected, ledger.ReasonWrongPeripheral)
		r.Message = "peripheral_id does not match the user's configured one"
		return
	}
	r.Extension = s.extensionIn(user, m)
	if u.IsGateway() {
		switch name {
		case ledger.CmdLogin, ledger.CmdLogout, ledger.CmdRestart, ledger.CmdStartSegment, ledger.CmdStopSegment:
			x.outcome(ledger.OutcomeUnsupported, ledger.ReasonGateway)
			r.Message = name + " is not available for gateway recording"
			return
		}
	}
	switch name {
	case ledger.CmdTag:
		s.cmdTag(x)
	case ledger.CmdPause:
		s.cmdPause(x)
	case ledger.CmdResume:
		s.cmdResume(x)
	case ledger.CmdRestart:
		s.cmdRestart(x)
	case ledger.CmdDelete:
		s.cmdDelete(x)
	case ledger.CmdLogin:
		s.cmdLogin(x)
	case ledger.CmdLogout:
		s.cmdLogout(x)
	case ledger.CmdMetadata:
		s.cmdMetadata(x)
	case ledger.CmdStartSegment:
		s.cmdStartSegment(x)
	case ledger.CmdStopSegment:
		s.cmdStopSegment(x)
	case ledger.CmdConfig:
		s.cmdConfig(x)
	}
}

// newResult returns a zeroed CommandResult cut from a block of them: one
// allocation per resultBlock commands instead of one each. A block lives
// as long as one of its results is held (Live keeps the recent ones).
func (s *State) newResult() *ledger.CommandResult {
	if len(s.results) == 0 {
		s.results = make([]ledger.CommandResult, resultBlock)
	}
	r := &s.results[0]
	s.results = s.results[1:]
	return r
}

const resultBlock = 32

// activeTarget finds the target call, answering no_active_call when none.
func (s *State) activeTarget(x *cmdCtx) *call {
	c := s.targetCallOf(x.m.agent)
	if c == nil {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNoActiveCall)
		return nil
	}
	s.on(x, c)
	if c.Deleted {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonDeleted)
		return nil
	}
	return c
}

func (s *State) cmdTag(x *cmdCtx) {
	c := s.targetCallOf(x.m.agent)
	if c == nil {
		s.tagLastCall(x)
		return
	}
	s.on(x, c)
	switch {
	case c.Deleted:
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonDeleted)
		return
	case x.u.IsGateway() && c.Contact == "" && c.Excluded:
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonExcluded)
		return
	case x.u.IsGateway() && !s.archives(x, c.Contact):
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonArchiveDisabled)
		return
	case x.u.IsGateway() && c.Contact == "":
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotRecording)
		return
	}
	if c.Contact == "" {
		s.openContact(x.e, c, &x.u, x.now, &x.eff)
	}
	ct := s.openOf(c)
	if !ct.addTag() {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonAlreadyTagged)
		s.on(x, c)
		return
	}
	s.appliedOn(x, c, c.CallID, " tagged")
}

// tagLastCall tags the agent's last call (no active call).
func (s *State) tagLastCall(x *cmdCtx) {
	ct := s.lastContact(x)
	if ct == nil {
		return
	}
	if _, ok := s.cfg.Teams[ct.V.Team]; !ok && s.rules >= 3 {
		// Its team was deleted since it closed: the tagged retention,
		// and a gateway team's archiving, are not known any more (before
		// version 3 the tag took 0 days of retention).
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonTeamDeleted)
		x.r.Message = "the last call's team " + strconv.Quote(ct.V.Team) + " was deleted since it closed: its tagged retention is not known; it keeps the retention it was given"
		return
	}
	if x.u.IsGateway() && !s.archives(x, ct.V.ContactID) {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonArchiveDisabled)
		return
	}
	if !ct.addTag() {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonAlreadyTagged)
		return
	}
	s.settle(ct)
	x.outcome(ledger.OutcomeApplied, "")
	if !s.quiet {
		x.eff.Changes = append(x.eff.Changes, "last call "+ct.V.CallID+" tagged: contact "+ct.V.ContactID+" "+*ct.V.Disposition)
	}
	s.book.contactUpdatedAt(x.e.Seq, s.view(ct))
}

// archives reports whether gateway tagging is enabled for contact id
// ("" for none): by the team of the contact, which also decides its
// ARCHIVE at close (version 3 on); by the user's team now before, and
// for a call with no contact.
func (s *State) archives(x *cmdCtx, id string) bool {
	if ct := s.contacts[id]; id != "" && ct != nil && s.rules >= 3 {
		return s.team(ct.V.Team).Archive
	}
	return x.m.team.Archive
}

// lastContact returns the contact of the agent's last call, answering
// no_last_call or deleted when there is none to act on. The answer names
// the call, its contact and its state: the call has ended, so it is not
// recorded (not_recording), or its recording was deleted.
func (s *State) lastContact(x *cmdCtx) *contact {
	a := s.agents[x.user]
	if a == nil || a.LastCall == nil {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNoLastCall)
		return nil
	}
	ct := s.contacts[a.LastCall.ContactID]
	if ct == nil {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNoLastCall)
		return nil
	}
	x.r.CallID, x.r.ContactID, x.r.Recording = ct.V.CallID, ct.V.ContactID, ledger.StateNotRecording
	if ct.V.Deleted {
		x.r.Recording = ledger.StateDeleted
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonDeleted)
		return nil
	}
	return ct
}

func (s *State) cmdPause(x *cmdCtx) {
	c := s.activeTarget(x)
	if c == nil {
		return
	}
	switch s.callState(c) {
	case ledger.StatePaused:
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonAlreadyPaused)
		return
	case ledger.StateNotRecording:
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotRecording)
		return
	}
	s.openPause(x.e, s.openOf(c), x.now, x.user, x.d.Transport)
	s.appliedOn(x, c, c.CallID, " recording→paused")
}

func (s *State) cmdResume(x *cmdCtx) {
	c := s.activeTarget(x)
	if c == nil {
		return
	}
	if s.callState(c) != ledger.StatePaused {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotPaused)
		return
	}
	s.closePause(x.e, s.openOf(c), x.now, ledger.EndedByResume, x.user, &x.eff)
	s.appliedOn(x, c, c.CallID, " paused→recording")
}

func (s *State) cmdRestart(x *cmdCtx) {
	c := s.activeTarget(x)
	if c == nil {
		return
	}
	if c.Contact == "" {
		s.openContact(x.e, c, &x.u, x.now, &x.eff)
		s.openOf(c).addTag()
		s.appliedOn(x, c, c.CallID, " tagged")
		return
	}
	ct := s.openOf(c)
	was := ct.Recording
	at := s.notBefore(ct, x.now)
	s.stopRecording(x.e, ct, at, x.now, ledger.EndedByRestart, x.user, &x.eff)
	ct.V.Segments = nil
	ct.SegStart = at
	ct.addTag()
	if was == ledger.StateRecording {
		s.appliedOn(x, c, c.CallID, " restarted: media discarded, new segment; tagged")
		return
	}
	s.appliedOn(x, c, c.CallID, " restarted: media discarded, new segment; ", was, "→recording, tagged")
}

func (s *State) cmdDelete(x *cmdCtx) {
	c := s.activeTarget(x)
	if c == nil {
		return
	}
	if c.Contact == "" {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotRecording)
		return
	}
	ct := s.openOf(c)
	s.stopRecording(x.e, ct, s.notBefore(ct, x.now), x.now, ledger.EndedByDelete, x.user, &x.eff)
	ct.V.Deleted = true
	ct.V.Segments = nil
	ct.V.Metadata = nil
	ct.V.ReasonCodes = nil
	// The contact's recording, not the user's now: a user switched to or
	// from gateway recording mid-call leaves the contact as it opened.
	ct.V.RootMayPersist = ct.V.RecordingType == ledger.RecGateway
	ct.Recording = ledger.StateDeleted
	c.Deleted = true
	c.Meta = nil
	s.appliedOn(x, c, c.CallID, " deleted: contact ", ct.V.ContactID)
}

func (s *State) cmdLogin(x *cmdCtx) {
	if x.d.Extension == "" {
		x.outcome(ledger.OutcomeRejected, ledger.ReasonMissingExtension)
		x.r.Message = "login needs an extension"
		return
	}
	if s.rules >= 2 && !ledger.ValidExtension(x.d.Extension) {
		// No call would ever match "3450 " or a line of text: the agent
		// would be detached from its real extension, its calls unrecorded.
		x.outcome(ledger.OutcomeRejected, ledger.ReasonInvalidExtension)
		x.r.Message = "login extension " + strconv.Quote(x.d.Extension) + " may hold only digits, + and # (at most " + strconv.Itoa(ledger.MaxExtensionLen) + ")"
		return
	}
	s.login(x.user, x.d.Extension, &x.eff)
	x.r.Extension = x.d.Extension
	x.outcome(ledger.OutcomeApplied, "")
}

func (s *State) cmdLogout(x *cmdCtx) {
	if s.extensionIn(x.user, x.m) == "" {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotLoggedIn)
		return
	}
	was := "" // the recording state of the call the logout stops recording
	if c := s.targetCallOf(x.m.agent); c != nil {
		s.on(x, c)
		if c.Contact != "" {
			was = s.callState(c)
		}
	}
	s.logout(x.e, x.user, &x.eff)
	if was != "" && !s.quiet {
		x.eff.Changes = append(x.eff.Changes, x.r.CallID+" "+was+"→not_recording")
	}
	if x.r.CallID != "" {
		x.r.Recording = ledger.StateNotRecording
		if x.r.ContactID == "" {
			x.r.Recording = ""
		}
	}
	x.r.Extension = ""
	x.outcome(ledger.OutcomeApplied, "")
}

func (s *State) cmdStartSegment(x *cmdCtx) {
	c := s.activeTarget(x)
	if c == nil {
		return
	}
	if c.Contact != "" {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonAlreadyRecording)
		return
	}
	s.openContact(x.e, c, &x.u, x.now, &x.eff)
	s.appliedOn(x, c)
}

func (s *State) cmdStopSegment(x *cmdCtx) {
	if s.rules >= 3 {
		if c := s.targetCallOf(x.m.agent); c != nil && c.Deleted && c.Contact != "" {
			s.stopDeletedSegment(x, c)
			return
		}
	}
	c := s.activeTarget(x)
	if c == nil {
		return
	}
	if c.Contact == "" {
		x.outcome(ledger.OutcomeNoEffect, ledger.ReasonNotRecording)
		return
	}
	id, was := c.Contact, s.callState(c)
	s.closeContact(x.e, c, x.now, ledger.EndedByStopSegment, x.user, &x.eff)
	s.appliedOn(x, c, c.CallID, " ", was, "→not_recording")
	x.r.ContactID = id
}

// stopDeletedSegment ends the deleted segment of call c (rules of version
// 3): its contact closes basic_only, and the call is between segments, as
// after any stopsegment. The guide makes each segment of an outbound
// dialer's call a contact of its own; before version 3 a delete marked the
// whole call, and no later customer of the session could be recorded.
func (s *State) stopDeletedSegment(x *cmdCtx, c *call) {
	id := c.Contact
	s.closeContact(x.e, c, x.now, ledger.EndedByStopSegment, x.user, &x.eff)
	c.Deleted = false
	s.appliedOn(x, c, c.CallID, " deleted→not_recording")
	x.r.ContactID = id
	x.r.Recording = ledger.StateNotRecording
}

func (s *State) cmdConfig(x *cmdCtx) {
	uc := s.userConfig(x.user, x.u)
	x.r.Config = &uc
	x.outcome(ledger.OutcomeApplied, "")
	if uc.ServerHost == "" && x.u.Recording != ledger.RecDesktop {
		// The guide's clients take a user with no server host for desktop
		// recording and send its commands to the desktop applet.
		x.r.Message = "the site has no server_host: a client reading this answer takes " + strconv.Quote(x.user) + " for desktop recording, though it is configured for " + x.u.Recording + " recording"
	}
}

// userConfig is what the config command returns.
func (s *State) userConfig(id string, u ledger.User) ledger.UserConfig {
	uc := ledger.UserConfig{UserID: id, Name: u.Name, Recording: u.Recording, Extension: u.Extension,
		Team: u.Team, PeripheralID: u.PeripheralID}
	if u.Recording != ledger.RecDesktop {
		uc.ServerHost = s.cfg.Site.ServerHost
		uc.VendorServerHost = uc.ServerHost
	}
	return uc
}
