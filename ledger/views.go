package ledger

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// The shapes the projections derive and the API returns (API.md §2, §5).
// They live here, beside the events, so that every package speaks the same
// words; only the projections compute them.

// Command outcomes (RULES.md "Commands").
const (
	OutcomeApplied     = "applied"     // the command changed something
	OutcomeNoEffect    = "no_effect"   // valid, nothing to do
	OutcomeUnsupported = "unsupported" // not available for this recording type
	OutcomeRejected    = "rejected"    // invalid input, unknown user, or not allowed
)

// Recording states of a call.
const (
	StateRecording    = "recording"
	StatePaused       = "paused"
	StateNotRecording = "not_recording"
	StateDeleted      = "deleted"
)

// Canonical command names (API.md §2); the vendor's aliases are resolved
// by CanonicalCommand.
const (
	CmdTag          = "tag"
	CmdPause        = "pause"
	CmdResume       = "resume"
	CmdRestart      = "restart"
	CmdDelete       = "delete"
	CmdLogin        = "login"
	CmdLogout       = "logout"
	CmdMetadata     = "metadata"
	CmdStartSegment = "startsegment"
	CmdStopSegment  = "stopsegment"
	CmdConfig       = "config"
)

// The vendor's aliases of commands (CanonicalCommand resolves them).
const (
	AliasRecordTag = "recordtag" // tag
	AliasPauseURL  = "pauseurl"  // pause
	AliasStart     = "start"     // startsegment
	AliasStop      = "stop"      // stopsegment
)

// Reason words of command results that are not applied (API.md §2:
// CommandResult.Reason): a no_effect, unsupported or rejected outcome's
// machine word. Not the reason codes of a contact (Code*).
const (
	ReasonInvalidInput     = "invalid_input"
	ReasonNotRecording     = "not_recording"
	ReasonAlreadyPaused    = "already_paused"
	ReasonNotPaused        = "not_paused"
	ReasonNoActiveCall     = "no_active_call"
	ReasonNoLastCall       = "no_last_call"
	ReasonDeleted          = "deleted"
	ReasonGateway          = "gateway"
	ReasonArchiveDisabled  = "archive_disabled"
	ReasonExcluded         = "excluded"
	ReasonAlreadyRecording = "already_recording"
	ReasonAlreadyTagged    = "already_tagged"
	ReasonNotLoggedIn      = "not_logged_in"
	ReasonUnknownUser      = "unknown_user"
	ReasonWrongPeripheral  = "wrong_peripheral"
	ReasonMissingExtension = "missing_extension"
	ReasonInvalidExtension = "invalid_extension"
	ReasonInvalidMetadata  = "invalid_metadata"
	ReasonNoKnownKeys      = "no_known_keys"
	ReasonUnchanged        = "unchanged"
	ReasonUnknownCommand   = "unknown_command"
	ReasonTeamDeleted      = "team_deleted"
)

// CanonicalCommand resolves the vendor's aliases (recordtag, pauseurl,
// start, stop); it returns "" for an unknown command.
func CanonicalCommand(name string) string {
	switch name {
	case AliasRecordTag, CmdTag:
		return CmdTag
	case AliasPauseURL, CmdPause:
		return CmdPause
	case AliasStart, CmdStartSegment:
		return CmdStartSegment
	case AliasStop, CmdStopSegment:
		return CmdStopSegment
	case CmdResume, CmdRestart, CmdDelete, CmdLogin, CmdLogout, CmdMetadata, CmdConfig:
		return name
	}
	return ""
}

// CommandNames lists every command name a Recording Controls path may
// give, aliases included, sorted.
func CommandNames() []string {
	return []string{
		CmdConfig, CmdDelete, CmdLogin, CmdLogout, CmdMetadata, CmdPause, AliasPauseURL,
		AliasRecordTag, CmdRestart, CmdResume, AliasStart, CmdStartSegment, AliasStop,
		CmdStopSegment, CmdTag,
	}
}

// Reason codes of a contact, in the order they are listed.
const (
	CodeTagged   = "TAGGED"
	CodeWorkflow = "WORKFLOW"
	CodeArchive  = "ARCHIVE"
)

// Dispositions of a closed contact.
const (
	DispositionUpload    = "upload"
	DispositionBasicOnly = "basic_only"
	DispositionDiscard   = "discard"
)

// How a pause interval ended.
const (
	EndedByResume      = "resume"
	EndedByCallEnd     = "call_end"
	EndedByRestart     = "restart"
	EndedByStopSegment = "stopsegment"
	EndedByLogout      = "logout"
	EndedByDelete      = "delete"
	EndedByTimeout     = "timeout"
)

// Who a pause row names in resumed_by when no agent's command ended it.
const (
	ResumedByCTI   = "cti"   // the call ended
	ResumedByTimer = "timer" // max_pause_seconds elapsed
)

// CommandResult is the projections' answer to one command event; the HTTP
// response is exactly this plus the event's id and seq.
type CommandResult struct {
	Command      string            `json:"command"` // canonical: recordtag→tag, pauseurl→pause, start→startsegment, stop→stopsegment
	Outcome      string            `json:"outcome"`
	Reason       string            `json:"reason"`
	Message      string            `json:"message,omitempty"`
	EventID      string            `json:"event_id"`
	Seq          uint64            `json:"seq"`
	UserID       string            `json:"user_id,omitempty"`
	Extension    string            `json:"extension,omitempty"`
	CallID       string            `json:"call_id,omitempty"`
	ContactID    string            `json:"contact_id,omitempty"`
	Recording    string            `json:"recording,omitempty"`
	AppliedKeys  []string          `json:"applied_keys,omitempty"`
	IgnoredKeys  []string          `json:"ignored_keys,omitempty"`
	RejectedKeys map[string]string `json:"rejected_keys,omitempty"`
	Config       *UserConfig       `json:"config,omitempty"`
}

// UserConfig is what the `config` command returns.
type UserConfig struct {
	UserID       string `json:"user_id"`
	Name         string `json:"name"`
	Recording    string `json:"recording"`
	Extension    string `json:"extension,omitempty"`
	Team         string `json:"team"`
	PeripheralID string `json:"peripheral_id,omitempty"`
	ServerHost   string `json:"server_host,omitempty"` // absent for desktop recording
	// VendorServerHost is ServerHost under the vendor's name: the guide
	// tells a client that "a user is configured for desktop recording if
	// no serverHost is returned", so a client written to it reads this one.
	VendorServerHost string `json:"serverHost,omitempty"`
}

// AgentState is GET /v1/agents/{user_id}.
type AgentState struct {
	UserID      string       `json:"user_id"`
	Extension   string       `json:"extension"`
	LoggedIn    bool         `json:"logged_in"`
	ActiveCalls []ActiveCall `json:"active_calls"`
	LastCall    *LastCall    `json:"last_call"`
}

// ActiveCall is one of an agent's active calls.
type ActiveCall struct {
	CallID    string `json:"call_id"`
	Recording string `json:"recording"`
	ContactID string `json:"contact_id"` // null in JSON while the call has no contact
	Tagged    bool   `json:"tagged"`
}

// MarshalJSON writes contact_id null, not absent, for a call with no
// contact: API.md lists contact_id among every active call's members.
func (a ActiveCall) MarshalJSON() ([]byte, error) {
	type plain ActiveCall
	if a.ContactID != "" {
		return json.Marshal(plain(a))
	}
	return json.Marshal(struct {
		CallID    string  `json:"call_id"`
		Recording string  `json:"recording"`
		ContactID *string `json:"contact_id"`
		Tagged    bool    `json:"tagged"`
	}{a.CallID, a.Recording, nil, a.Tagged})
}

// LastCall names the agent's last recorded call.
type LastCall struct {
	CallID    string `json:"call_id"`
	ContactID string `json:"contact_id"`
}

// Segment is a stretch of media.
type Segment struct {
	Start Time `json:"start"`
	End   Time `json:"end"`
}

// Pause is a pause interval as shown inside a contact.
type Pause struct {
	Start   Time    `json:"start"`
	End     Time    `json:"end"` // null while open
	EndedBy string  `json:"ended_by,omitempty"`
	Seconds float64 `json:"seconds"` // null while open, as PauseRow's
}

// MarshalJSON writes p as its fields say, with seconds null while p is
// open (a closed contact's pauses, all a manifest holds, are closed).
func (p Pause) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// AppendJSON appends p's JSON, as MarshalJSON writes it, by hand: a
// pause history or a contact list is encoded a row at a time.
func (p *Pause) AppendJSON(b []byte) []byte {
	b = append(b, `{"start":`...)
	b = appendTimeJSON(b, p.Start)
	b = append(b, `,"end":`...)
	b = appendTimeJSON(b, p.End)
	if p.EndedBy != "" {
		b = AppendJSONString(append(b, `,"ended_by":`...), p.EndedBy)
	}
	b = appendSeconds(append(b, `,"seconds":`...), p.End, p.Seconds)
	return append(b, '}')
}

// appendSeconds appends a pause's length as encoding/json writes a float
// of its range (milliseconds, well under 1e21), or null while the pause
// is open (end zero).
func appendSeconds(b []byte, end Time, secs float64) []byte {
	if end.IsZero() {
		return append(b, "null"...)
	}
	return strconv.AppendFloat(b, secs, 'f', -1, 64)
}

// Contact is one recording unit (API.md §5).
type Contact struct {
	ContactID      string            `json:"contact_id"`
	CallID         string            `json:"call_id"`
	UserID         string            `json:"user_id"`
	Extension      string            `json:"extension"`
	Team           string            `json:"team"`
	RecordingType  string            `json:"recording_type"`
	Direction      string            `json:"direction"`
	ANI            string            `json:"ani"`
	DNIS           string            `json:"dnis"`
	StartedAt      Time              `json:"started_at"`
	EndedAt        Time              `json:"ended_at"`
	Segments       []Segment         `json:"segments"`
	Pauses         []Pause           `json:"pauses"`
	ReasonCodes    []string          `json:"reason_codes"`
	Metadata       map[string]string `json:"metadata"`
	Deleted        bool              `json:"deleted"`
	RootMayPersist bool              `json:"root_may_persist,omitempty"` // gateway delete
	Disposition    *string           `json:"disposition"`                // null while open
	Day            string            `json:"day"`                        // the manifest day; "" until sealed
	RetainUntil    string            `json:"retain_until"`               // YYYY-MM-DD, "" unless saved
	State          string            `json:"recording"`                  // current recording state
}

// PauseRow is one pause interval in the PCI history (GET /v1/pauses).
//
// Transport is how the pause arrived (cad, finesse); ResumeTransport how
// the event that closed it did: cad or finesse for an agent's command,
// http or nats for a call signal, "" for the server's own timer and while
// the pause is open (RULES.md: "who sent the pause and the resume, by
// which transport"). An open pause's Seconds is not known yet: its JSON
// is null and its CSV cell empty, not 0 (a sum would read it as none).
type PauseRow struct {
	ContactID       string  `json:"contact_id"`
	CallID          string  `json:"call_id"`
	UserID          string  `json:"user_id"`
	Extension       string  `json:"extension"`
	Start           Time    `json:"start"`
	End             Time    `json:"end"`
	EndedBy         string  `json:"ended_by"`
	Seconds         float64 `json:"seconds"`
	PausedBy        string  `json:"paused_by"`
	ResumedBy       string  `json:"resumed_by"`
	Transport       string  `json:"transport"`
	OpenEventID     string  `json:"open_event_id"`
	CloseEventID    string  `json:"close_event_id"`
	ResumeTransport string  `json:"resume_transport"`
}

// MarshalJSON writes p as its fields say, with seconds null while p is
// open.
func (p PauseRow) MarshalJSON() ([]byte, error) { return p.AppendJSON(nil), nil }

// AppendJSON appends p's JSON, as MarshalJSON writes it, by hand: an
// export of the pause history writes it a row at a time (WriteList).
// BenchmarkPauseRowJSON: 0.76–0.99 µs and no allocation, against
// 3.2–3.5 µs for json.Marshal of the fields, and 5.9 µs for the
// MarshalJSON that re-encoded them to write a null.
func (p *PauseRow) AppendJSON(b []byte) []byte {
	str := func(b []byte, key, v string) []byte { return AppendJSONString(append(b, key...), v) }
	b = str(b, `{"contact_id":`, p.ContactID)
	b = str(b, `,"call_id":`, p.CallID)
	b = str(b, `,"user_id":`, p.UserID)
	b = str(b, `,"extension":`, p.Extension)
	b = appendTimeJSON(append(b, `,"start":`...), p.Start)
	b = appendTimeJSON(append(b, `,"end":`...), p.End)
	b = str(b, `,"ended_by":`, p.EndedBy)
	b = appendSeconds(append(b, `,"seconds":`...), p.End, p.Seconds)
	b = str(b, `,"paused_by":`, p.PausedBy)
	b = str(b, `,"resumed_by":`, p.ResumedBy)
	b = str(b, `,"transport":`, p.Transport)
	b = str(b, `,"open_event_id":`, p.OpenEventID)
	b = str(b, `,"close_event_id":`, p.CloseEventID)
	b = str(b, `,"resume_transport":`, p.ResumeTransport)
	return append(b, '}')
}

// ContactQuery filters GET /v1/contacts; empty fields match all.
type ContactQuery struct {
	UserID      string
	Day         string
	Disposition string
}

// PauseQuery filters GET /v1/pauses; zero times are open ends, empty
// strings match all.
type PauseQuery struct {
	UserID    string
	ContactID string // the pauses of one contact (its recording)
	CallID    string // the pauses of one call id, on every contact it had
	From      Time
	To        Time
}

// ParseRFC3339 parses an RFC 3339 time as a client writes one: its "T"
// and "Z" may be lower case too (RFC 3339 §5.6, NOTE), which time.Parse
// refuses. What time.Parse takes and RFC 3339 does not is refused: a
// comma before the fraction, and an offset of hour 24 or minute 60 (a
// walk's "+24:00" dated a call a whole day off). Events themselves are
// read strictly (canonical form).
func ParseRFC3339(v string) (time.Time, error) {
	u := strings.ToUpper(v)
	t, err := time.Parse(time.RFC3339Nano, u)
	if err != nil {
		return t, err
	}
	if strings.IndexByte(u, ',') >= 0 {
		return time.Time{}, fmt.Errorf("parsing time %q: a comma before the fraction is not RFC 3339", v)
	}
	if n := len(u); u[n-1] != 'Z' && (u[n-5:n-3] > "23" || u[n-2:] > "59") {
		return time.Time{}, fmt.Errorf("parsing time %q: the offset is out of range", v)
	}
	return t, nil
}

// ParseQueryTime reads a bound of a PauseQuery as the API and the CLI
// take it: an RFC 3339 time, or a date YYYY-MM-DD, its first instant in loc
// (the site's time zone, as contacts' days and manifests are dated; UTC
// when nil). Empty is the zero Time, an open end; false means neither form.
func ParseQueryTime(v string, loc *time.Location) (Time, bool) {
	if v == "" {
		return Time{}, true
	}
	if t, err := ParseRFC3339(v); err == nil {
		return T(t), true
	}
	if loc == nil {
		loc = time.UTC
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		// The day's first instant there: where midnight falls in a
		// daylight-saving gap, the end of the gap (time.Date would answer
		// an hour early, in the day before), as UploadAt finds it.
		y, m, d := t.Date()
		return T(UploadAt(y, m, d, 0, 0, loc)), true
	}
	return Time{}, false
}

// CheckDayBounds refuses from and to given as the same YYYY-MM-DD day. A
// date is the midnight at its start, so the two name one instant, and
// the query matches only the pauses open across that midnight: an
// auditor's "the 1st to the 1st" answered as no pauses that day (a walk).
// Two equal times are a question (the pauses in force then), and stay.
func CheckDayBounds(from, to string) error {
	if from == "" || from != to {
		return nil
	}
	d, err := time.Parse(time.DateOnly, to)
	if err != nil {
		return nil
	}
	return &FieldError{Field: "to", Message: fmt.Sprintf("to (%s) is the day from names: a date is the midnight at its start, "+
		"so the two name one instant, and the query would match only the pauses open across it; "+
		"for the whole day give to=%s", to, d.AddDate(0, 0, 1).Format(time.DateOnly))}
}

// Check reports a query whose contact id is not a ULID (a mistyped one
// matched nothing, and read as "no pauses"), or whose From is after its
// To: it can match nothing, and is more likely a mistake than a
// question.
func (q PauseQuery) Check() error {
	if q.ContactID != "" {
		if _, err := ulid.ParseStrict(strings.ToUpper(q.ContactID)); err != nil {
			return &FieldError{Field: "contact_id", Message: fmt.Sprintf("%q is not a contact id (a 26-character ULID)", q.ContactID)}
		}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To.Time) {
		return &FieldError{Field: "to", Message: fmt.Sprintf("to (%s) is before from (%s): the query can match nothing", q.To, q.From)}
	}
	return nil
}

// ReasonMessage says an outcome reason (API.md §2: `reason` for machines,
// `message` for people) in a sentence, for answers whose projections gave
// no message of their own; "" for a word it does not know.
func ReasonMessage(reason string) string {
	switch reason {
	case ReasonNotRecording:
		return "the call is not being recorded"
	case ReasonAlreadyPaused:
		return "the recording is already paused"
	case ReasonNotPaused:
		return "the recording is not paused"
	case ReasonNoActiveCall:
		return "the agent has no active call"
	case ReasonNoLastCall:
		return "the agent has no active or last call"
	case ReasonDeleted:
		return "the recording of this call was deleted"
	case ReasonGateway:
		return "not available for gateway recording"
	case ReasonArchiveDisabled:
		return "the recording's team does not archive recordings"
	case ReasonTeamDeleted:
		return "the contact's team was deleted since it closed"
	case ReasonExcluded:
		return "the call is on the team's exclusion list"
	case ReasonAlreadyRecording:
		return "the call is already being recorded"
	case ReasonAlreadyTagged:
		return "the call is already tagged"
	case ReasonNotLoggedIn:
		return "the agent is not logged in"
	case ReasonInvalidMetadata:
		return "no metadata key was applied: see rejected_keys"
	case ReasonNoKnownKeys:
		return "no parameter names a defined metadata key"
	case ReasonUnchanged:
		return "the call already holds these metadata values"
	}
	return ""
}
