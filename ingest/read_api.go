package ingest

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/ledger"
)

const dayLayout = "2006-01-02"

// handleAgent serves GET /v1/agents/{user_id}.
func (s *Server) handleAgent(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user_id")
	a, err := s.views.Agent(user)
	if errors.Is(err, ledger.ErrNotFound) {
		if other, ok := s.agentInOtherCase(user); ok {
			// As the filters of /v1/contacts and /v1/pauses say it.
			s.writeError(w, r, newError(reasonNotFound,
				fmt.Sprintf("agent %q: not found (user ids are case-sensitive); agent %q differs only in case", user, other)))
			return
		}
	}
	if err != nil {
		s.writeError(w, r, err) // "agent ID: not found"
		return
	}
	if a.ActiveCalls == nil {
		a.ActiveCalls = []ledger.ActiveCall{}
	}
	s.writeJSON(w, http.StatusOK, a)
}

// handleAgents serves GET /v1/agents?logged_in=true|false: every
// configured agent, and any other one a command or a call signal named,
// ordered by user id.
func (s *Server) handleAgents(w http.ResponseWriter, r *http.Request) {
	var want *bool
	switch v := r.URL.Query().Get("logged_in"); v {
	case "":
	case "true", "false":
		b := v == "true"
		want = &b
	default:
		s.writeError(w, r, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("logged_in must be true or false, got %q", v)).with("field", "logged_in"))
		return
	}
	agents := s.views.Agents()
	if want != nil {
		agents = slices.DeleteFunc(agents, func(a ledger.AgentState) bool { return a.LoggedIn != *want })
	}
	s.writeJSON(w, http.StatusOK, struct {
		Agents []ledger.AgentState `json:"agents"`
	}{agents})
}

// handleContacts serves GET /v1/contacts?user_id=&day=&disposition=,
// streamed as GET /v1/pauses is.
func (s *Server) handleContacts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cq := ledger.ContactQuery{UserID: q.Get("user_id"), Day: q.Get("day"), Disposition: q.Get("disposition")}
	if cq.Day != "" {
		if err := checkDay(cq.Day); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	switch cq.Disposition {
	case "", ledger.DispositionUpload, ledger.DispositionBasicOnly, ledger.DispositionDiscard:
	default:
		s.writeError(w, r, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("disposition must be upload, basic_only or discard, got %q", cq.Disposition)).with("field", "disposition"))
		return
	}
	if err := s.checkUserFilter(cq.UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	st := &streamed{w: w, ctype: "application/json"}
	err := ledger.WriteList(st, "contacts", func(fn func(*ledger.Contact) error) error {
		return s.views.EachContact(r.Context(), cq, fn)
	})
	s.endStream(w, r, st, err, nil)
}

// handleContact serves GET /v1/contacts/{contact_id}.
func (s *Server) handleContact(w http.ResponseWriter, r *http.Request) {
	// Contact ids are ULIDs, which are read in any case (as replay --until
	// reads them) and written in upper case.
	c, err := s.views.Contact(r.Context(), strings.ToUpper(r.PathValue("contact_id")))
	if err != nil {
		s.writeError(w, r, err) // the error names the contact
		return
	}
	s.writeJSON(w, http.StatusOK, c)
}

// handlePauses serves GET /v1/pauses?user_id=&contact_id=&call_id=&from=&to= as JSON, or as CSV
// with a header row on Accept: text/csv or ?format=csv. The rows are
// streamed (Views.EachPause): an export of the whole history holds one
// sealed chunk of rows at a time, not all of them. A log out of time order
// found before the first bytes were sent is answered whole through
// Views.Pauses, which sorts; see endStream for the other errors.
func (s *Server) handlePauses(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pq := ledger.PauseQuery{UserID: q.Get("user_id"), ContactID: q.Get("contact_id"), CallID: q.Get("call_id")}
	var err error
	loc := s.views.Location()
	if pq.From, err = parseTimeParam("from", q.Get("from"), loc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if pq.To, err = parseTimeParam("to", q.Get("to"), loc); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := pq.Check(); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := ledger.CheckDayBounds(q.Get("from"), q.Get("to")); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.checkUserFilter(pq.UserID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if f := q.Get("format"); f != "" && !strings.EqualFold(f, "csv") && !strings.EqualFold(f, "json") {
		s.writeError(w, r, newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("format must be csv or json, got %q", f)).with("field", "format"))
		return
	}
	st := &streamed{w: w}
	if wantsCSV(r) {
		st.ctype = "text/csv; charset=utf-8"
		cw := csv.NewWriter(st)
		cw.Write(ledger.PauseCSVHeader())
		err = s.views.EachPause(r.Context(), pq, func(p *ledger.PauseRow) error {
			return cw.Write(p.CSVRecord())
		})
		cw.Flush()
		if err == nil {
			err = cw.Error()
		}
	} else {
		st.ctype = "application/json"
		err = ledger.WriteList(st, "pauses", func(fn func(*ledger.PauseRow) error) error {
			return s.views.EachPause(r.Context(), pq, fn)
		})
	}
	s.endStream(w, r, st, err, func() { s.answerPauses(w, r, pq) })
}

// endStream ends a streamed answer: it sends the rest; or, after err and
// before anything was sent, answers the error (or, for a log out of time
// order, the whole sorted answer through unordered); or cuts the
// connection, the status having gone out already.
func (s *Server) endStream(w http.ResponseWriter, r *http.Request, st *streamed, err error, unordered func()) {
	if err == nil {
		err = st.flush()
	}
	switch {
	case err == nil:
	case st.pending() && unordered != nil && errors.Is(err, ledger.ErrUnordered):
		unordered()
	case st.pending():
		s.writeError(w, r, err)
	case r.Context().Err() != nil: // the client went away
		panic(http.ErrAbortHandler)
	default:
		s.log.Error("streamed answer cut short", logKeyRoute, r.Pattern, logKeyErr, err)
		panic(http.ErrAbortHandler)
	}
}

// answerPauses answers GET /v1/pauses from Views.Pauses, whole.
func (s *Server) answerPauses(w http.ResponseWriter, r *http.Request, pq ledger.PauseQuery) {
	rows, err := s.views.Pauses(r.Context(), pq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rows == nil {
		rows = []ledger.PauseRow{}
	}
	if wantsCSV(r) {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		w.Write(pausesCSV(rows))
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"pauses": rows})
}

// wantsCSV reports whether r asks for CSV: ?format=csv, or else an
// Accept header that prefers text/csv to application/json.
func wantsCSV(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return strings.EqualFold(f, "csv")
	}
	return prefersCSV(r.Header.Get("Accept"))
}

// prefersCSV reports whether an Accept header prefers text/csv to
// application/json (RFC 9110 §12.5.1). Each gets the quality of the most
// specific range naming it (type/subtype, type/*, */*), case aside; q=0 is
// "not acceptable". At equal quality the more specific range wins, then
// the one listed first; JSON when nothing tells them apart.
func prefersCSV(accept string) bool {
	type pref struct {
		q    float64
		spec int // 2 type/subtype, 1 type/*, 0 */*, -1 none
		pos  int
	}
	csvPref, jsonPref := pref{q: -1, spec: -1}, pref{q: -1, spec: -1}
	for pos, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if k, v, ok := strings.Cut(p, "="); ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
		for _, t := range []struct {
			p           *pref
			full, major string
		}{{&csvPref, "text/csv", "text/*"}, {&jsonPref, "application/json", "application/*"}} {
			spec := -1
			switch mt {
			case t.full:
				spec = 2
			case t.major:
				spec = 1
			case "*/*":
				spec = 0
			}
			if spec > t.p.spec {
				*t.p = pref{q: q, spec: spec, pos: pos}
			}
		}
	}
	switch c, j := csvPref, jsonPref; {
	case c.q <= 0:
		return false
	case c.q != j.q:
		return c.q > j.q
	case c.spec != j.spec:
		return c.spec > j.spec
	default:
		return c.pos < j.pos
	}
}

func pausesCSV(rows []ledger.PauseRow) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write(ledger.PauseCSVHeader())
	for i := range rows {
		cw.Write(rows[i].CSVRecord())
	}
	cw.Flush()
	return b.Bytes()
}

// checkUserFilter refuses a user_id filter that names no agent: no
// configuration and no event has named it, so no contact or pause row can
// be its, and an empty answer would read as "never paused" where the id
// was mistyped (an auditor's walk: JDOE for jdoe). 404, as
// GET /v1/agents/{user_id} answers, naming an agent that differs only in
// case when there is one.
func (s *Server) checkUserFilter(user string) error {
	if user == "" {
		return nil
	}
	if _, err := s.views.Agent(user); !errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	msg := fmt.Sprintf("user_id %q names no agent: no configuration or event has named it, so nothing can match (user ids are case-sensitive)", user)
	if other, ok := s.agentInOtherCase(user); ok {
		msg += fmt.Sprintf("; agent %q differs only in case", other)
	}
	return newError(reasonNotFound, msg).with("field", "user_id")
}

// agentInOtherCase finds an agent whose user id is user in other case.
func (s *Server) agentInOtherCase(user string) (string, bool) {
	for _, a := range s.views.Agents() {
		if strings.EqualFold(a.UserID, user) {
			return a.UserID, true
		}
	}
	return "", false
}

// parseTimeParam reads an RFC 3339 time or a YYYY-MM-DD day (midnight in
// the site's zone, loc).
func parseTimeParam(name, v string, loc *time.Location) (ledger.Time, error) {
	if t, ok := ledger.ParseQueryTime(v, loc); ok {
		return t, nil
	}
	hint := ""
	if strings.Contains(v, " ") {
		// "T03:00:00+05:00" unescaped: the query string reads + as a space.
		hint = " (a + in a URL's query is read as a space: send the offset's + as %2B)"
	}
	return ledger.Time{}, newError(ledger.ReasonInvalidInput,
		fmt.Sprintf("%s must be an RFC 3339 time or YYYY-MM-DD, got %q%s", name, v, hint)).with("field", name)
}

func checkDay(day string) error {
	if _, err := time.Parse(dayLayout, day); err != nil {
		return newError(ledger.ReasonInvalidInput,
			fmt.Sprintf("day must be YYYY-MM-DD, got %q", day)).with("field", "day")
	}
	return nil
}

// handleManifest serves GET /v1/manifests/{day}: the sealed manifest's
// bytes as they are (404 until sealed).
func (s *Server) handleManifest(w http.ResponseWriter, r *http.Request) {
	day := r.PathValue("day")
	if err := checkDay(day); err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.views.Manifest(r.Context(), day)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			err = newError(reasonNotFound, fmt.Sprintf("day %s is not sealed", day))
		}
		s.writeError(w, r, err)
		return
	}
	writeRawJSON(w, b)
}

// handleCloseDay serves POST /v1/manifests/{day}/close (admin): seal the
// day now and answer its manifest; 409 already_sealed when it is sealed.
func (s *Server) handleCloseDay(w http.ResponseWriter, r *http.Request) {
	day := r.PathValue("day")
	if err := checkDay(day); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	sealed := s.views.SealedDays()
	if slices.Contains(sealed, day) {
		s.writeError(w, r, newError(reasonAlreadySealed,
			fmt.Sprintf("day %s is already sealed; GET /v1/manifests/%s returns its manifest", day, day)).with("day", day))
		return
	}
	if last := slices.Max(append([]string{""}, sealed...)); day < last {
		s.writeError(w, r, newError(reasonConflict,
			fmt.Sprintf("day %s is before the last sealed day %s", day, last)).with("day", day))
		return
	}
	if today, zone := s.siteToday(); day > today {
		s.writeError(w, r, newError(reasonFutureDay,
			fmt.Sprintf("day %s has not begun at the site (today is %s in %s): days are sealed in order, so sealing it would stop every seal until then", day, today, zone)).with("day", day))
		return
	}
	if at, ok := s.views.EarliestPending(); ok {
		// The seal files every contact closed since the last one under
		// day: a day before all of them (a mistyped year) would misfile
		// them for good, as the future typo above would stop the seals
		// (a walk's 2025-12-02 took the day's calls).
		loc := s.views.Location()
		if first := at.In(loc).Format(dayLayout); day < first {
			s.writeError(w, r, newError(reasonBeforeContacts,
				fmt.Sprintf("day %s is before every contact waiting for a seal (the earliest is of %s in %s): the seal would file them all under %s; seal %s or a later day", day, first, loc, day, first)).with("day", day))
			return
		}
	}
	d := ledger.DayClosed{Day: day, By: ledger.SealRequest, Principal: principalOf(r)}
	envs, err := s.appendEvents(r.Context(), sourceSeal, ledger.Event{Type: ledger.TypeDayClosed, Data: d})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// As the scheduler's seals are logged: an operator reading the log
	// sees every day sealed, and who asked.
	s.log.Info("day sealed", schedKeyDay, day, schedKeyBy, ledger.SealRequest, logKeyPrincipal, d.Principal, logKeySeq, envs[0].Seq)
	b, err := s.views.Manifest(r.Context(), day)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("manifest %s after seal: %w", day, err))
		return
	}
	writeRawJSON(w, b)
}

// siteToday is the site's date now, in the time zone the projections
// date days with, and that zone's name.
func (s *Server) siteToday() (day, zone string) {
	loc := s.views.Location()
	return s.now().In(loc).Format(dayLayout), loc.String()
}

func writeRawJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
