package ledger

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseQueryTime(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // RFC 3339 in UTC; "" for the zero time
		ok   bool
	}{
		{"", "", true},
		{"2026-11-23", "2026-11-23T00:00:00Z", true},
		{"2026-11-23T14:02:00Z", "2026-11-23T14:02:00Z", true},
		{"2026-11-23T15:02:00.250+01:00", "2026-11-23T14:02:00.25Z", true},
		{"2026-11-23T15:02:00.250999+01:00", "2026-11-23T14:02:00.25Z", true},
		{"2026-11-23t14:02:00z", "2026-11-23T14:02:00Z", true}, // RFC 3339 §5.6 allows lower case
		{"2026-11-23T14:02:00-23:59", "2026-11-24T14:01:00Z", true},
		{"2026-11-23T14:02:00+24:00", "", false}, // time.Parse takes these three, RFC 3339 does not
		{"2026-11-23T14:02:00+01:60", "", false},
		{"2026-11-23T14:02:00,5Z", "", false},
		{"14:02", "", false},
		{"2026-11-31", "", false},
	} {
		got, ok := ParseQueryTime(c.in, nil)
		s := ""
		if !got.IsZero() {
			s = got.UTC().Format(time.RFC3339Nano)
		}
		if ok != c.ok || s != c.want {
			t.Errorf("ParseQueryTime(%q) = %q, %v; want %q, %v", c.in, s, ok, c.want, c.ok)
		}
	}
}

// A date is the site's midnight, as its contacts' days are.
func TestParseQueryTimeInTheSiteZone(t *testing.T) {
	chicago, err := LoadZone("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ParseQueryTime("2026-11-29", chicago)
	if want := "2026-11-29T06:00:00Z"; !ok || got.UTC().Format(time.RFC3339) != want {
		t.Errorf("2026-11-29 in Chicago = %v, %v; want %s", got, ok, want)
	}
	// Midnight in a daylight-saving gap: the day begins at the gap's end
	// (time.Date answered an hour early, the day before's last hour).
	for _, c := range []struct{ zone, day, want string }{
		{"America/Havana", "2026-03-08", "2026-03-08T05:00:00Z"},
		{"America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z"},
		{"America/Santiago", "2026-04-05", "2026-04-05T04:00:00Z"}, // the clocks went back at midnight
	} {
		loc, err := LoadZone(c.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := ParseQueryTime(c.day, loc); !ok || got.UTC().Format(time.RFC3339) != c.want {
			t.Errorf("%s in %s = %v, %v; want %s", c.day, c.zone, got, ok, c.want)
		}
	}
	got, _ = ParseQueryTime("2026-11-29T00:00:00Z", chicago) // a time names its own zone
	if want := "2026-11-29T00:00:00Z"; got.UTC().Format(time.RFC3339) != want {
		t.Errorf("a time with its zone = %v; want %s", got, want)
	}
	q := PauseQuery{From: T(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)), To: T(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))}
	if err := q.Check(); !errors.Is(err, ErrInvalid) {
		t.Errorf("from after to: %v", err)
	}
}

// FuzzParseRFC3339: never a panic; what it takes, time.Parse takes too,
// with an offset within ±23:59 and no comma.
func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2026-11-23T14:02:00Z", "2026-11-23t14:02:00.5+01:00", "2026-11-23T14:02:00+24:00", "2026-11-23T14:02:00,5Z", "Z", "+01:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := ParseRFC3339(v)
		if err != nil {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, strings.ToUpper(v))
		if err != nil || !got.Equal(want) {
			t.Fatalf("%q: %v, time.Parse %v %v", v, got, want, err)
		}
		if _, off := got.Zone(); off <= -24*3600 || off >= 24*3600 || strings.Contains(v, ",") {
			t.Fatalf("%q taken: offset %d", v, off)
		}
	})
}

// The vendor's aliases name the same commands as their canonical names;
// CommandNames is API.md §2's list, sorted; any other name is none.
func TestCanonicalCommand(t *testing.T) {
	want := map[string]string{
		"tag": CmdTag, "recordtag": CmdTag, "pause": CmdPause, "pauseurl": CmdPause,
		"startsegment": CmdStartSegment, "start": CmdStartSegment, "stopsegment": CmdStopSegment, "stop": CmdStopSegment,
		"resume": CmdResume, "restart": CmdRestart, "delete": CmdDelete, "login": CmdLogin, "logout": CmdLogout,
		"metadata": CmdMetadata, "config": CmdConfig,
	}
	names := CommandNames()
	if !slices.IsSorted(names) || len(names) != len(want) {
		t.Errorf("command names %v: want the %d of API.md, sorted", names, len(want))
	}
	for _, n := range names {
		if got := CanonicalCommand(n); got != want[n] || got == "" {
			t.Errorf("CanonicalCommand(%q) = %q, want %q", n, got, want[n])
		}
	}
	for n, c := range want {
		if got := CanonicalCommand(n); got != c {
			t.Errorf("CanonicalCommand(%q) = %q, want %q", n, got, c)
		}
	}
	for _, n := range []string{"", "record", "stops", "pauseurls", "unpause"} {
		if got := CanonicalCommand(n); got != "" {
			t.Errorf("CanonicalCommand(%q) = %q, want none", n, got)
		}
	}
}

// The words API.md fixes for a command's outcome, its reason and the
// call's recording state: clients are written against them.
func TestAnswerWordsAreTheAPIs(t *testing.T) {
	for _, c := range [][2]string{
		{OutcomeApplied, "applied"}, {OutcomeNoEffect, "no_effect"}, {OutcomeUnsupported, "unsupported"}, {OutcomeRejected, "rejected"},
		{ReasonNotRecording, "not_recording"}, {ReasonAlreadyPaused, "already_paused"}, {ReasonNoActiveCall, "no_active_call"},
		{ReasonDeleted, "deleted"}, {ReasonGateway, "gateway"}, {ReasonUnknownUser, "unknown_user"}, {ReasonInvalidInput, "invalid_input"},
		{StateRecording, "recording"}, {StatePaused, "paused"}, {StateNotRecording, "not_recording"}, {StateDeleted, "deleted"},
	} {
		if got, want := c[0], c[1]; got != want {
			t.Errorf("%q, API.md says %q", got, want)
		}
	}
}

// Every reason the projections give without a message of their own is
// said in a sentence; a word ReasonMessage does not know gets none, not
// itself.
func TestReasonMessage(t *testing.T) {
	for _, r := range []string{ReasonNotRecording, ReasonAlreadyPaused, ReasonNotPaused, ReasonNoActiveCall, ReasonNoLastCall,
		ReasonDeleted, ReasonGateway, ReasonArchiveDisabled, ReasonTeamDeleted, ReasonExcluded, ReasonAlreadyRecording,
		ReasonAlreadyTagged, ReasonNotLoggedIn, ReasonInvalidMetadata, ReasonNoKnownKeys, ReasonUnchanged} {
		if m := ReasonMessage(r); m == "" || m == r {
			t.Errorf("%s: %q, want a sentence", r, m)
		}
	}
	if m := ReasonMessage("no_such_reason"); m != "" {
		t.Errorf("an unknown word: %q", m)
	}
}

// API.md lists contact_id among every active call's members: null while
// the call has no contact, its id once it has one.
func TestActiveCallContactIDIsNullUntilItHasOne(t *testing.T) {
	for _, c := range []struct {
		a    ActiveCall
		want string
	}{
		{ActiveCall{CallID: "c-1", Recording: StateNotRecording, Tagged: true}, `{"call_id":"c-1","recording":"not_recording","contact_id":null,"tagged":true}`},
		{ActiveCall{CallID: "c-2", Recording: StatePaused, ContactID: "01JD"}, `{"call_id":"c-2","recording":"paused","contact_id":"01JD","tagged":false}`},
	} {
		if b, err := json.Marshal(c.a); err != nil || string(b) != c.want {
			t.Errorf("%+v: %s %v, want %s", c.a, b, err, c.want)
		}
	}
}

// From and to given as one date name one instant: refused on "to",
// naming the next day as the whole day's end. Two equal times, two
// different dates, or an open end are questions, and stay.
func TestCheckDayBounds(t *testing.T) {
	err := CheckDayBounds("2026-12-01", "2026-12-01")
	var fe *FieldError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != "to" || !strings.Contains(fe.Message, "to=2026-12-02") {
		t.Errorf("the same day: %v", err)
	}
	for _, c := range [][2]string{{"", ""}, {"2026-12-01", "2026-12-02"}, {"", "2026-12-01"},
		{"2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"}} {
		if err := CheckDayBounds(c[0], c[1]); err != nil {
			t.Errorf("from %q to %q: %v", c[0], c[1], err)
		}
	}
}

// A pause query's contact id is a ULID, in either case (one that is not
// is refused on "contact_id", quoting it); a from after its to is refused
// on "to"; equal bounds, or one open end, are questions.
func TestPauseQueryCheck(t *testing.T) {
	at := T(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC))
	for _, q := range []PauseQuery{
		{ContactID: "01JDAX3Y8Z0000000000000000"}, {ContactID: "01jdax3y8z0000000000000000"},
		{From: at, To: at}, {From: at}, {To: at},
	} {
		if err := q.Check(); err != nil {
			t.Errorf("%+v: %v", q, err)
		}
	}
	var fe *FieldError
	if err := (PauseQuery{ContactID: "c-77"}).Check(); !errors.As(err, &fe) || fe.Field != "contact_id" || !strings.Contains(fe.Message, `"c-77"`) {
		t.Errorf("a contact id that is not a ULID: %v", err)
	}
	if err := (PauseQuery{From: T(at.Add(time.Millisecond)), To: at}).Check(); !errors.As(err, &fe) || fe.Field != "to" {
		t.Errorf("from after to: %v", err)
	}
}

// The members API.md lists stay in the answer when empty: a contact's
// disposition is null while it is open, an agent's last call null when
// none, a result's reason "" when applied; the config command answers the
// vendor's serverHost too.
func TestAnswersKeepTheirMembers(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{Contact{ContactID: "01JD"}, `"disposition":null`},
		{AgentState{UserID: "jdoe"}, `"last_call":null`},
		{CommandResult{Command: CmdTag, Outcome: OutcomeApplied}, `"reason":""`},
		{UserConfig{UserID: "jdoe", ServerHost: "qm-base-1", VendorServerHost: "qm-base-1"}, `"serverHost":"qm-base-1"`},
	} {
		if b, err := json.Marshal(c.v); err != nil || !strings.Contains(string(b), c.want) {
			t.Errorf("%T: %s %v, want %s in it", c.v, b, err, c.want)
		}
	}
}
