package ingest

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/recledger/recledger/ledger"
)

// commandPathPrefix is where the Recording Controls commands are served.
const commandPathPrefix = "/recordingcontrols/rest/"

// handleCommand serves /recordingcontrols/rest/{command}: size first, auth
// second, then the command name; every request that gets that far is
// appended, whatever its input, and answered with the projections' result.
func (s *Server) handleCommand(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut:
	default:
		w.Header().Set("Allow", "GET, POST, PUT")
		s.writeError(w, r, newError(reasonMethod, "use GET, POST or PUT"))
		return
	}
	if r.ContentLength > s.maxBody {
		s.writeError(w, r, tooLarge(s.maxBody))
		return
	}
	if int64(len(r.URL.RawQuery)) > s.maxBody {
		// The body limit, applied to the query string too: a command's
		// parameters become a ledger event, whichever way they came.
		s.writeError(w, r, queryTooLarge(s.maxBody))
		return
	}
	principal, err := s.authorize(r, RoleCommand)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	asked := r.PathValue("command")
	if asked == "" { // the catch-all: no command, or more than one segment
		asked = strings.TrimPrefix(r.URL.Path, commandPathPrefix)
		// "tag/", as a desktop's action path may be typed, is tag.
		if c, ok := strings.CutSuffix(asked, "/"); ok && c != "" && !strings.Contains(c, "/") {
			asked = c
		}
	}
	name := strings.ToLower(asked)
	if ledger.CanonicalCommand(name) == "" {
		valid := ledger.CommandNames()
		s.writeError(w, r, newError(ledger.ReasonUnknownCommand,
			fmt.Sprintf("unknown command %q; valid commands: %s", asked, strings.Join(valid, ", "))).
			with("commands", valid))
		return
	}
	if r.PathValue("command") == "" {
		// "tag/" served by the catch-all is counted on /metrics with the
		// other commands, not under the catch-all's route.
		r.Pattern = commandPathPrefix + "{command}"
	}
	body, err := s.readBodyPooled(w, r, s.maxBody)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req request
	if enc := r.Header.Get("Content-Encoding"); enc != "" && !strings.EqualFold(enc, "identity") {
		// A compressed body read as text is bytes nobody meant: refused
		// with what was sent, not as text that is "not UTF-8" (a walk).
		req = parseParams(r.URL.RawQuery, "", nil)
		req.Invalid = ledger.ReasonInvalidInput
		req.Message, _ = maskCards(fmt.Sprintf("the body is encoded (Content-Encoding %.40q): send it uncompressed", enc))
	} else {
		req = parseParams(r.URL.RawQuery, r.Header.Get("Content-Type"), body.Bytes())
	}
	s.releaseBody(body) // parseParams copies what it keeps
	if names := s.tokens.redactTokens(&req); len(names) > 0 {
		s.warnTokenParam(names, name, clientIP(r))
	}
	cmd := ledger.Command{
		Command:      name,
		SenderID:     req.SenderID,
		PeripheralID: req.PeripheralID,
		Extension:    req.Extension,
		Params:       req.Params,
		Masked:       req.Masked,
		Invalid:      req.Invalid,
		Message:      req.Message,
		Transport:    transportOf(req),
		Method:       r.Method,
		Client:       clientIP(r),
		Principal:    principal,
	}
	envs, err := s.appendEvents(r.Context(), sourceCommand, ledger.Event{Type: ledger.TypeCommand, Data: cmd})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	env := envs[0]
	res, ok := s.views.Result(env.Seq)
	if !ok {
		reason := reasonInternal
		if f, isFailer := s.views.(Failer); isFailer && f.Err() != nil {
			reason = reasonUnavailable // the projections stopped
		}
		s.writeError(w, r, newError(reason, "the command was recorded but its result is not available").
			with("seq", env.Seq).with("event_id", env.ID.String()))
		return
	}
	if res.EventID == "" {
		res.EventID = env.ID.String()
	}
	if res.Seq == 0 {
		res.Seq = env.Seq
	}
	if res.Command == "" {
		res.Command = name
	}
	if res.Message == "" && res.Reason != "" {
		res.Message = ledger.ReasonMessage(res.Reason) // the sentence for people API.md §2 promises
	} else if res.Message == "" && res.Command == "metadata" && res.Outcome == ledger.OutcomeApplied && res.ContactID == "" {
		res.Message = metadataHeld
	}
	s.met.countCommand(res.Command, res.Outcome)
	if s.log.Enabled(r.Context(), slog.LevelDebug) { // the arguments cost four allocations even when not logged
		s.log.Debug("command", logKeyCommand, res.Command, logKeyOutcome, res.Outcome, logKeySeq, env.Seq, logKeyPrincipal, principal)
	}
	if res.Command == "metadata" {
		s.writeJSON(w, statusOfResult(res), metadataAnswer(res))
		return
	}
	s.writeJSON(w, statusOfResult(res), res)
}

// metadataReply is a metadata command's answer: the three key lists are
// always there (API.md §2), empty when no key went that way.
type metadataReply struct {
	ledger.CommandResult
	AppliedKeys  []string          `json:"applied_keys"`
	IgnoredKeys  []string          `json:"ignored_keys"`
	RejectedKeys map[string]string `json:"rejected_keys"`
}

// metadataHeld is the message of metadata applied to an active call that
// is not recorded (docs/rules-decisions.md, Metadata): it waits on the
// call for a contact.
const metadataHeld = "the call is not being recorded: the metadata is kept on the call and saved only if its recording starts (tag, restart, startsegment); it is lost if the call ends unrecorded"

func metadataAnswer(res ledger.CommandResult) metadataReply {
	m := metadataReply{CommandResult: res, AppliedKeys: res.AppliedKeys, IgnoredKeys: res.IgnoredKeys, RejectedKeys: res.RejectedKeys}
	if m.AppliedKeys == nil {
		m.AppliedKeys = []string{}
	}
	if m.IgnoredKeys == nil {
		m.IgnoredKeys = []string{}
	}
	if m.RejectedKeys == nil {
		m.RejectedKeys = map[string]string{}
	}
	return m
}

// transportOf names how a command arrived: a JSON body is what Cisco
// Finesse workflows send; query and form parameters are what Cisco Agent
// Desktop HTTP actions send.
func transportOf(req request) string {
	if req.JSON {
		return ledger.TransportFinesse
	}
	return ledger.TransportCAD
}

func tooLarge(limit int64) error {
	return newError(reasonTooLarge,
		fmt.Sprintf("the request body is over %d bytes", limit)).with("limit", limit)
}

// queryTooLarge is the answer to a query string over limit bytes: the
// body limit applies to it too (a command's parameters become a ledger
// event, whichever way they came); 414, not 413 (statusOfReason).
func queryTooLarge(limit int64) error {
	e := newError(reasonTooLarge, fmt.Sprintf("the query string is over %d bytes", limit)).with("limit", limit)
	e.inURI = true
	return e
}
