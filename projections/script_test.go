package projections

// The golden-script harness. Each file under testdata/scripts is a
// datadriven script (github.com/cockroachdb/datadriven): directives feed
// events to a fresh State and print outcomes and queries. To regenerate the
// expected output after an intended change, run
//
//	go test ./projections -run TestScripts -rewrite
//
// and review the diff. runScript is shared with the manifest tests.
//
// Directives (times default to 2026-11-23, each event one second after the
// previous one unless at= is given; at=HH:MM:SS[.mmm] or RFC 3339):
//
//	config                      input: JSON document, applied as a PartDocument put
//	config part=<p> [key=<k>] [op=delete]   input: the part's JSON
//	call <type> <call_id> ext=<e> [dir=..] [ani=..] [dnis=..] [acd] [at=..]
//	cmd <command> [sender=<id>] [ext=..] [peripheral=..] [transport=..] [at=..]
//	    [masked=(k1,k2)] [invalid=<reason>] [message=(text)] [key=value ...]
//	    input (optional): more params, one key=value a line (value raw)
//	timer pause_expiry [#seq|seq|ulid] [at=..]   (default: the next due pause, at its due time)
//	seal <day> [at=..] [by=..]
//	agent <user> | agents | contact <call_id|#seq> | contacts [user=..] [day=..] [disposition=..]
//	pauses [user=..] [contact=#seq] [call=..] [from=..] [to=..] | manifest <day> | days | timers | digest
//	open team=<team>            the team's open contacts | pending: the earliest contact closed since the last seal
//	checkpoint                  round-trips the state; fails unless the digest is unchanged
//	trace on|off                print each event's Changes lines (default on)
//	version <n>                 the events that follow are of version n (default ledger.CurrentVersion):
//	                            a rule of an earlier version stays tested
//
// Event ids are ULIDs built from the seq and time; in the output every id
// of an event of the script is written #<seq>.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/oklog/ulid/v2"

	"github.com/recledger/recledger/ledger"
)

// scriptDay is the day script times default to.
var scriptDay = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/scripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

// scriptRun is the state of one script.
type scriptRun struct {
	s       *State
	seq     uint64
	last    time.Time
	prev    string
	ids     map[string]uint64 // event id → seq
	bySeq   map[uint64]ulid.ULID
	trace   bool
	store   memSections // the sections of the checkpoints taken
	version int         // the version of the events appended; 0 is ledger.CurrentVersion
}

func newScriptRun() *scriptRun {
	return &scriptRun{s: New(), last: scriptDay, ids: map[string]uint64{}, bySeq: map[uint64]ulid.ULID{}, trace: true, store: memSections{}}
}

// runScript runs one golden script against a fresh State.
func runScript(t *testing.T, path string) {
	t.Helper()
	r := newScriptRun()
	datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
		return r.alias(r.directive(t, d))
	})
}

// seqEntropy is a ULID entropy source that spells the seq: ids are
// deterministic and unique.
type seqEntropy uint64

func (s seqEntropy) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	binary.BigEndian.PutUint64(p[len(p)-8:], uint64(s))
	return len(p), nil
}

// parseAt reads HH:MM:SS[.mmm] on the script day, or RFC 3339.
func parseAt(t *testing.T, v string) time.Time {
	t.Helper()
	if strings.Contains(v, "T") {
		p, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("at=%s: %v", v, err)
		}
		return p.UTC()
	}
	p, err := time.Parse("15:04:05.000", v)
	if err != nil {
		if p, err = time.Parse("15:04:05", v); err != nil {
			t.Fatalf("at=%s: %v", v, err)
		}
	}
	return scriptDay.Add(time.Duration(p.Hour())*time.Hour + time.Duration(p.Minute())*time.Minute +
		time.Duration(p.Second())*time.Second + time.Duration(p.Nanosecond()))
}

// when is the time of the next event: at= if given, else one second after
// the previous event.
func (r *scriptRun) when(t *testing.T, d *datadriven.TestData) (time.Time, bool) {
	if a, ok := d.Arg("at"); ok {
		return parseAt(t, a.Vals[0]), true
	}
	return r.last.Add(time.Second), false
}

// append builds the next envelope at time at (the envelope's own time never
// goes back), seals it into the chain and applies it.
func (r *scriptRun) append(t *testing.T, typ ledger.Type, at time.Time, data any) (Effect, *ledger.Envelope) {
	t.Helper()
	if at.Before(r.last) {
		at = r.last
	}
	r.last = at
	r.seq++
	raw, err := ledger.EncodeData(data)
	if err != nil {
		t.Fatal(err)
	}
	ms := ulid.Timestamp(at)
	id, err := ulid.New(ms, seqEntropy(r.seq))
	if err != nil {
		t.Fatal(err)
	}
	version := r.version
	if version == 0 {
		version = ledger.CurrentVersion
	}
	e := &ledger.Envelope{Seq: r.seq, ID: id, Time: ledger.T(at), Type: typ, Version: version, Data: raw}
	if _, err := e.Seal(r.prev); err != nil {
		t.Fatal(err)
	}
	r.prev = e.Hash
	r.ids[id.String()] = r.seq
	r.bySeq[r.seq] = id
	eff, err := r.s.Apply(e)
	if err != nil {
		t.Fatalf("apply seq %d: %v", r.seq, err)
	}
	return eff, e
}

// alias writes every event id of the script as #<seq>.
func (r *scriptRun) alias(out string) string {
	if !strings.Contains(out, "01") {
		return out
	}
	ids := make([]string, 0, len(r.ids))
	for id := range r.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		out = strings.ReplaceAll(out, id, "#"+strconv.FormatUint(r.ids[id], 10))
	}
	return out
}

// resolve turns #seq, seq or a ULID into an event id.
func (r *scriptRun) resolve(t *testing.T, v string) string {
	t.Helper()
	if n, err := strconv.ParseUint(strings.TrimPrefix(v, "#"), 10, 64); err == nil {
		id, ok := r.bySeq[n]
		if !ok {
			t.Fatalf("no event #%d", n)
		}
		return id.String()
	}
	return v
}

func argVal(d *datadriven.TestData, key string) string {
	if a, ok := d.Arg(key); ok {
		return strings.Join(a.Vals, ",")
	}
	return ""
}

func (r *scriptRun) changes(b *strings.Builder, eff Effect) {
	if !r.trace {
		return
	}
	for _, c := range eff.Changes {
		fmt.Fprintf(b, "  %s\n", c)
	}
}

func (r *scriptRun) directive(t *testing.T, d *datadriven.TestData) string {
	var b strings.Builder
	switch d.Cmd {
	case "config":
		r.config(t, d, &b)
	case "call":
		r.call(t, d, &b)
	case "cmd":
		r.cmd(t, d, &b)
	case "timer":
		r.timer(t, d, &b)
	case "seal":
		at, _ := r.when(t, d)
		by := argVal(d, "by")
		if by == "" {
			by = ledger.SealRequest
		}
		eff, _ := r.append(t, ledger.TypeDayClosed, at, ledger.DayClosed{Day: d.CmdArgs[0].Key, By: by})
		fmt.Fprintf(&b, "sealed %s\n", d.CmdArgs[0].Key)
		r.changes(&b, eff)
	case "agent":
		a, err := r.s.Agent(d.CmdArgs[0].Key)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		writeJSON(t, &b, a)
	case "contact":
		r.contact(t, d, &b)
	case "contacts":
		q := ledger.ContactQuery{UserID: argVal(d, "user"), Day: argVal(d, "day"), Disposition: argVal(d, "disposition")}
		for _, c := range contactsOf(t, r.s, q) {
			b.WriteString(contactLine(c))
		}
	case "pauses":
		q := ledger.PauseQuery{UserID: argVal(d, "user"), CallID: argVal(d, "call")}
		if v := argVal(d, "contact"); v != "" {
			// In lower case, as a URL may carry it: a ULID reads in any case.
			q.ContactID = strings.ToLower(r.resolve(t, v))
		}
		if v := argVal(d, "from"); v != "" {
			q.From = ledger.T(parseAt(t, v))
		}
		if v := argVal(d, "to"); v != "" {
			q.To = ledger.T(parseAt(t, v))
		}
		for _, p := range pausesOf(t, r.s, q) {
			fmt.Fprintf(&b, "%s %s %s@%s %s→%s %s %.3fs by=%s/%s resumed_by=%s/%s open=%s close=%s\n",
				p.ContactID, p.CallID, p.UserID, p.Extension, clock(p.Start), clock(p.End), orOpen(p.EndedBy), p.Seconds,
				p.PausedBy, p.Transport, p.ResumedBy, p.ResumeTransport, p.OpenEventID, p.CloseEventID)
		}
	case "manifest":
		m, err := r.s.Manifest(context.Background(), d.CmdArgs[0].Key)
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		var ind bytes.Buffer
		if err := json.Indent(&ind, m, "", "  "); err != nil {
			t.Fatalf("manifest is not JSON: %v", err)
		}
		b.Write(ind.Bytes())
		b.WriteByte('\n')
	case "days":
		day, at := r.s.LastSeal()
		fmt.Fprintf(&b, "sealed=%v last=%s at=%s\n", r.s.SealedDays(), day, at)
	case "agents":
		for _, a := range r.s.Agents() {
			calls := make([]string, len(a.ActiveCalls))
			for i, c := range a.ActiveCalls {
				calls[i] = c.CallID + ":" + c.Recording + flag(c.Tagged, ":tagged")
			}
			last := "-"
			if a.LastCall != nil {
				last = a.LastCall.CallID
			}
			fmt.Fprintf(&b, "%s ext=%s logged_in=%v calls=[%s] last=%s\n", a.UserID, a.Extension, a.LoggedIn, strings.Join(calls, " "), last)
		}
	case "open":
		fmt.Fprintf(&b, "%v\n", r.s.OpenContactsOfTeam(argVal(d, "team")))
	case "pending":
		if at, ok := r.s.EarliestPending(); ok {
			fmt.Fprintf(&b, "earliest closed %s\n", clock(at))
		} else {
			b.WriteString("none\n")
		}
	case "timers":
		if tf, ok := r.s.NextTimer(); ok {
			fmt.Fprintf(&b, "next %s pause=%s contact=%s due=%s\n", tf.Timer, tf.PauseOpenID, tf.ContactID, tf.Due)
		} else {
			b.WriteString("none\n")
		}
	case "digest":
		fmt.Fprintf(&b, "%s\n", r.s.Digest())
	case "checkpoint":
		before := r.s.Digest()
		s2 := roundTrip(t, r.s, r.store)
		if after := s2.Digest(); after != before {
			t.Fatalf("checkpoint round trip changed the digest: %s → %s", before, after)
		}
		r.s = s2
		b.WriteString("ok\n")
	case "trace":
		r.trace = d.CmdArgs[0].Key == "on"
		return ""
	case "version":
		v, err := strconv.Atoi(d.CmdArgs[0].Key)
		if err != nil || v < 1 || v > ledger.CurrentVersion {
			t.Fatalf("version %s: 1 to %d", d.CmdArgs[0].Key, ledger.CurrentVersion)
		}
		r.version = v
		return ""
	default:
		t.Fatalf("unknown directive %q", d.Cmd)
	}
	return b.String()
}

func (r *scriptRun) config(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	part := argVal(d, "part")
	if part == "" {
		part = ledger.PartDocument
	}
	op := argVal(d, "op")
	if op == "" {
		op = ledger.OpPut
	}
	cc := ledger.ConfigChange{Part: part, Key: argVal(d, "key"), Op: op, Source: "file"}
	if op == ledger.OpPut {
		// validate like ingest does, so scripts cannot feed what the server refuses
		if part == ledger.PartDocument {
			var c ledger.Config
			if err := json.Unmarshal([]byte(d.Input), &c); err != nil {
				t.Fatalf("config: %v", err)
			}
			if err := c.Validate(); err != nil {
				return
			}
			c.Normalize()
			v, _ := json.Marshal(c)
			cc.Value = v
		} else {
			var v json.RawMessage
			if err := json.Unmarshal([]byte(d.Input), &v); err != nil {
				t.Fatalf("config: %v", err)
			}
			var buf bytes.Buffer
			_ = json.Compact(&buf, v)
			cc.Value = buf.Bytes()
		}
	}
	at, _ := r.when(t, d)
	eff, _ := r.append(t, ledger.TypeConfig, at, cc)
	r.changes(b, eff)
}

func (r *scriptRun) call(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	if len(d.CmdArgs) < 2 {
		t.Fatalf("call <type> <call_id> ext=..")
	}
	cs := ledger.CallSignal{Type: d.CmdArgs[0].Key, CallID: d.CmdArgs[1].Key, Extension: argVal(d, "ext"),
		Direction: argVal(d, "dir"), ANI: argVal(d, "ani"), DNIS: argVal(d, "dnis"), ACD: d.HasArg("acd"),
		Transport: ledger.TransportHTTP}
	at, given := r.when(t, d)
	if given {
		cs.At = ledger.T(at)
	}
	// sent= is when the server took it (the envelope's time), when a
	// feed's clock disagrees with the server's; by default at.
	sent := at
	if a, ok := d.Arg("sent"); ok {
		sent = parseAt(t, a.Vals[0])
	}
	eff, _ := r.append(t, ledger.TypeCallSignal, sent, cs)
	if !r.trace {
		fmt.Fprintf(b, "%s %s\n", cs.CallID, cs.Type)
	}
	r.changes(b, eff)
}

// cmdKeys are the cmd directive's own arguments; the others are params.
var cmdKeys = map[string]bool{"sender": true, "ext": true, "peripheral": true, "transport": true, "at": true,
	"masked": true, "invalid": true, "message": true, "appended": true}

func (r *scriptRun) cmd(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	c := ledger.Command{Command: d.CmdArgs[0].Key, SenderID: argVal(d, "sender"), Extension: argVal(d, "ext"),
		PeripheralID: argVal(d, "peripheral"), Transport: argVal(d, "transport"), Invalid: argVal(d, "invalid"),
		Message: argVal(d, "message")}
	if c.Transport == "" {
		c.Transport = ledger.TransportHTTP
	}
	if a, ok := d.Arg("masked"); ok {
		c.Masked = a.Vals
	}
	for _, a := range d.CmdArgs[1:] {
		if !cmdKeys[a.Key] {
			c.Params = append(c.Params, ledger.Param{Key: a.Key, Value: strings.Join(a.Vals, ",")})
		}
	}
	for _, line := range strings.Split(d.Input, "\n") {
		if line == "" {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		c.Params = append(c.Params, ledger.Param{Key: k, Value: v})
	}
	at, _ := r.when(t, d)
	eff, _ := r.append(t, ledger.TypeCommand, at, c)
	b.WriteString(resultLine(eff.Result))
	if eff.Result.Config != nil {
		writeJSON(t, b, eff.Result.Config)
	}
	r.changes(b, eff)
}

func (r *scriptRun) timer(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	tf := ledger.TimerFired{Timer: d.CmdArgs[0].Key}
	if len(d.CmdArgs) > 1 && !cmdKeys[d.CmdArgs[1].Key] {
		tf.PauseOpenID = r.resolve(t, d.CmdArgs[1].Key)
	}
	at, given := r.when(t, d)
	next, ok := r.s.NextTimer()
	if ok && tf.PauseOpenID == "" {
		tf.PauseOpenID = next.PauseOpenID
	}
	if ok && next.PauseOpenID == tf.PauseOpenID {
		tf.ContactID = next.ContactID
		if !given {
			at = next.Due.Time
		}
	}
	tf.Due = ledger.T(at)
	if v := argVal(d, "appended"); v != "" {
		at = parseAt(t, v) // a server back from an outage appends it late
	}
	eff, _ := r.append(t, ledger.TypeTimer, at, tf)
	fmt.Fprintf(b, "timer %s due=%s\n", tf.Timer, clock(tf.Due))
	r.changes(b, eff)
}

func (r *scriptRun) contact(t *testing.T, d *datadriven.TestData, b *strings.Builder) {
	key := d.CmdArgs[0].Key
	if strings.HasPrefix(key, "#") {
		c, err := r.s.Contact(context.Background(), r.resolve(t, key))
		if err != nil {
			b.WriteString("error: " + err.Error() + "\n")
			return
		}
		writeJSON(t, b, c)
		return
	}
	if c, err := r.s.Contact(context.Background(), key); err == nil {
		writeJSON(t, b, c)
		return
	}
	n := 0
	for _, c := range contactsOf(t, r.s, ledger.ContactQuery{}) {
		if c.CallID == key {
			writeJSON(t, b, c)
			n++
		}
	}
	if n == 0 {
		b.WriteString("no contact\n")
	}
}

// resultLine is one command's answer on one line.
func resultLine(r *ledger.CommandResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s → %s", r.Command, r.Outcome)
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	kv("reason", r.Reason)
	kv("user", r.UserID)
	kv("ext", r.Extension)
	kv("recording", r.Recording)
	kv("call", r.CallID)
	kv("contact", r.ContactID)
	kv("applied", strings.Join(r.AppliedKeys, ","))
	kv("ignored", strings.Join(r.IgnoredKeys, ","))
	if len(r.RejectedKeys) > 0 {
		ks := make([]string, 0, len(r.RejectedKeys))
		for k, v := range r.RejectedKeys {
			ks = append(ks, k+":"+v)
		}
		sort.Strings(ks)
		kv("rejected", strings.Join(ks, ","))
	}
	kv("message", r.Message)
	b.WriteByte('\n')
	return b.String()
}

// contactLine is a contact in one line.
func contactLine(c ledger.Contact) string {
	disp := "open"
	if c.Disposition != nil {
		disp = *c.Disposition
	}
	segs := make([]string, len(c.Segments))
	for i, s := range c.Segments {
		segs[i] = clock(s.Start) + "-" + clock(s.End)
	}
	ps := make([]string, len(c.Pauses))
	for i, p := range c.Pauses {
		ps[i] = clock(p.Start) + "-" + clock(p.End) + ":" + orOpen(p.EndedBy)
	}
	meta, _ := json.Marshal(c.Metadata)
	return fmt.Sprintf("%s %s %s@%s %s %s %v day=%s retain=%s segs=[%s] pauses=[%s] meta=%s%s\n",
		c.ContactID, c.CallID, c.UserID, c.Extension, c.State, disp, c.ReasonCodes, c.Day, c.RetainUntil,
		strings.Join(segs, " "), strings.Join(ps, " "), meta, flag(c.Deleted, " deleted")+flag(c.RootMayPersist, " root_may_persist"))
}

func flag(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

func orOpen(s string) string {
	if s == "" {
		return "open"
	}
	return s
}

// clock writes a time of the script day as HH:MM:SS[.mmm], others in full.
func clock(t ledger.Time) string {
	if t.IsZero() {
		return "…"
	}
	u := t.UTC()
	if u.Year() == scriptDay.Year() && u.YearDay() == scriptDay.YearDay() {
		if u.Nanosecond() != 0 {
			return u.Format("15:04:05.000")
		}
		return u.Format("15:04:05")
	}
	return t.String()
}

func writeJSON(t *testing.T, b *strings.Builder, v any) {
	j, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b.Write(j)
	b.WriteByte('\n')
}
