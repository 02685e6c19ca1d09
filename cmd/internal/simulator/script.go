package simulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
)

// Request kinds.
const (
	KindConfig  = "config"  // PUT /v1/config/...
	KindCommand = "command" // /recordingcontrols/rest/{cmd}
	KindSignal  = "signal"  // POST /v1/calls/events
)

// Request is one HTTP request of a script.
type Request struct {
	Agent       int    `json:"agent"`
	Kind        string `json:"kind"`
	Label       string `json:"label"` // command as sent (lower case), "signal", "config", or "bad:…"
	Method      string `json:"method"`
	Path        string `json:"path"` // with the query string
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
	// Appends is how many ledger events the server must append for this
	// request when it answers below 500: 1 for a request naming a known
	// command within the size limit (whatever its outcome), the number of
	// signals for a call-signal request, 0 for an unknown command or an
	// oversize body.
	Appends int `json:"appends"`
}

// timeLayout is API.md's time format: RFC 3339 UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// maxBody is the server's limit on a Recording Controls body (API.md §2).
const maxBody = 16 << 10

// Script returns agent a's requests for a day of calls: a pure function
// of seed, the agent, calls and day. Signals carry their time on day
// (`at`); with a zero day they carry none, and the server stamps them.
func Script(seed int64, a Agent, calls int, day time.Time) []Request {
	s := &scripter{
		a:     a,
		seed:  seed,
		rng:   rand.New(rand.NewPCG(uint64(seed), uint64(a.Index)+1)),
		stamp: !day.IsZero(),
	}
	if day.IsZero() {
		day = scriptDay
	}
	s.clock = day.Add(8*time.Hour + time.Duration(a.Index%60)*time.Second)
	s.play(calls)
	return s.out
}

type scripter struct {
	a     Agent
	seed  int64 // in the call ids: another seed's calls are other calls
	rng   *rand.Rand
	clock time.Time
	stamp bool // signals carry the clock as their `at`
	out   []Request
	seq   int // call counter
}

func (s *scripter) chance(p float64) bool { return s.rng.Float64() < p }

// between returns a duration in [lo, hi) seconds.
func (s *scripter) between(lo, hi int) time.Duration {
	return time.Duration(lo+s.rng.IntN(hi-lo)) * time.Second
}

func (s *scripter) play(calls int) {
	a := s.a
	if a.HotDesk {
		s.cmd("login", param{"extension", a.Phone})
	} else if s.chance(0.05) {
		s.cmd("login", param{"extension", a.Phone}) // gateway users get unsupported
	}
	if s.chance(0.1) {
		s.cmd("config")
	}
	for range calls {
		s.seq++
		if a.Team == TeamDialer && s.chance(0.6) {
			s.outboundSession()
		} else {
			s.inboundCall()
		}
		s.clock = s.clock.Add(s.between(10, 120))
	}
	if a.Index == 0 || s.chance(0.02) {
		s.badInput()
	}
	if s.chance(0.5) {
		s.cmd("logout")
	}
}

// callID names the agent's call of this seed. The seed is in it: a run
// of another seed on the same server makes calls of its own, where the
// ids of an earlier run's ended calls were taken for late signals of
// those and ignored (an operator's walk's run made no contact).
func (s *scripter) callID(suffix string) string {
	return fmt.Sprintf("s%d-a%05d-c%04d%s", s.seed, s.a.Index, s.seq, suffix)
}

// inboundCall: an ACD call with, at random, metadata, a payment pause, a
// tag, a consultation call, a restart or a delete, and commands after hang-up.
func (s *scripter) inboundCall() {
	id := s.callID("")
	ani := fmt.Sprintf("+1312555%04d", s.rng.IntN(10000))
	if s.chance(0.1) {
		ani = fmt.Sprintf("+1800555%04d", s.rng.IntN(10000)) // on the dialer team's Don't Record list
	}
	ring := signal{CallID: id, Type: "ringing", Direction: "inbound", ANI: ani, DNIS: "8001", ACD: true}
	answer := signal{CallID: id, Type: "answered", Direction: "inbound", ANI: ani, DNIS: "8001", ACD: true}
	if s.chance(0.1) {
		s.signals(&ring, &answer) // one batch of two
	} else {
		s.signals(&ring)
		s.clock = s.clock.Add(s.between(2, 15))
		s.signals(&answer)
	}
	s.clock = s.clock.Add(s.between(5, 30))
	if s.chance(0.4) {
		s.metadata(false)
	}
	if s.chance(0.1) {
		s.consultation(id)
	}
	if s.chance(0.25) {
		s.cmd("pause")
		s.clock = s.clock.Add(s.between(10, 90))
		if s.chance(0.85) {
			s.cmd("resume")
		}
	}
	if s.chance(0.2) {
		s.cmd("tag")
	}
	if s.chance(0.05) {
		s.cmd("restart")
	}
	if s.chance(0.03) {
		s.cmd("delete")
		if s.chance(0.5) {
			s.cmd("tag") // no_effect: deleted
		}
	}
	s.clock = s.clock.Add(s.between(30, 400))
	s.signals(&signal{CallID: id, Type: "ended", Direction: "inbound"})
	if s.chance(0.1) {
		s.cmd("tag") // the last call
	}
	if s.chance(0.15) {
		s.metadata(true)
	}
}

// consultation: a second, internal call on top of the active one (the
// two-call case): hold, dial, talk (maybe a command on the consult), hang up, retrieve.
func (s *scripter) consultation(first string) {
	id := s.callID("-k")
	s.signals(&signal{CallID: first, Type: "held", Direction: "inbound"})
	s.signals(&signal{CallID: id, Type: "dialing", Direction: "internal", DNIS: "3999"})
	s.clock = s.clock.Add(s.between(1, 5))
	s.signals(&signal{CallID: id, Type: "answered", Direction: "internal", DNIS: "3999"})
	s.clock = s.clock.Add(s.between(10, 60))
	if s.chance(0.3) {
		s.cmd("tag")
	}
	s.signals(&signal{CallID: id, Type: "ended", Direction: "internal"})
	s.signals(&signal{CallID: first, Type: "retrieved", Direction: "inbound"})
}

// outboundSession: an outbound dialer call cut into contacts by stopsegment/startsegment.
func (s *scripter) outboundSession() {
	id := s.callID("")
	dnis := fmt.Sprintf("+1415555%04d", s.rng.IntN(10000))
	if s.chance(0.15) {
		dnis = fmt.Sprintf("+1800555%04d", s.rng.IntN(10000))
	}
	s.signals(&signal{CallID: id, Type: "dialing", Direction: "outbound", DNIS: dnis})
	s.clock = s.clock.Add(s.between(3, 20))
	s.signals(&signal{CallID: id, Type: "answered", Direction: "outbound", DNIS: dnis})
	for range 1 + s.rng.IntN(3) {
		s.clock = s.clock.Add(s.between(20, 120))
		s.cmd(s.alias("stopsegment", "stop"))
		s.clock = s.clock.Add(s.between(5, 30))
		s.cmd(s.alias("startsegment", "start"))
		if s.chance(0.3) {
			s.metadata(false)
		}
	}
	if s.chance(0.5) {
		s.cmd(s.alias("stopsegment", "stop"))
	}
	s.clock = s.clock.Add(s.between(10, 60))
	s.signals(&signal{CallID: id, Type: "ended", Direction: "outbound"})
}

// badInput: an unknown command, an unknown user, an unexpanded Finesse
// variable, an oversize body.
func (s *scripter) badInput() {
	s.add(Request{Kind: KindCommand, Label: "bad:unknown_command", Method: "GET",
		Path: "/recordingcontrols/rest/frobnicate?sender_id=" + s.a.UserID, Appends: 0})
	s.add(Request{Kind: KindCommand, Label: "bad:unknown_user", Method: "POST",
		Path: "/recordingcontrols/rest/pause", ContentType: "application/x-www-form-urlencoded",
		Body: []byte("sender_id=nobody-" + s.a.UserID), Appends: 1})
	s.add(Request{Kind: KindCommand, Label: "bad:finesse_variable", Method: "POST",
		Path: "/recordingcontrols/rest/metadata", ContentType: "application/json",
		Body: []byte(`{"senderId":"` + s.a.UserID + `","metadata":{"agentname":"${agentName}"}}`), Appends: 1})
	big := `{"senderId":"` + s.a.UserID + `","metadata":{"note":"` + strings.Repeat("x", maxBody+512) + `"}}`
	s.add(Request{Kind: KindCommand, Label: "bad:oversize", Method: "POST",
		Path: "/recordingcontrols/rest/metadata", ContentType: "application/json", Body: []byte(big), Appends: 0})
}

// metadata sends metadata during the call or after hang-up; sometimes with a
// card number (rejected key) or a badly formatted number.
func (s *scripter) metadata(after bool) {
	kv := []param{
		{"account", fmt.Sprint(100000 + s.rng.IntN(900000))},
		{"agentname", "Agent " + fmt.Sprint(s.a.Index)},
	}
	if s.chance(0.5) {
		kv = append(kv, param{"callback", s.clock.AddDate(0, 0, 1+s.rng.IntN(14)).Format(time.DateOnly)})
	}
	if s.chance(0.3) {
		kv = append(kv, param{"amount", fmt.Sprintf("%d.%02d", s.rng.IntN(1000), s.rng.IntN(100))})
	}
	if s.chance(0.05) {
		kv = append(kv, param{"note", "card 4111 1111 1111 1111"}) // rejected: card_number
	}
	if s.chance(0.03) {
		kv = append(kv, param{"ordernum", "12,5"}) // rejected: format
	}
	if after && s.chance(0.2) {
		kv = append(kv, param{"campaign", "callback-" + fmt.Sprint(s.seq)})
	}
	s.cmd("metadata", kv...)
}

// alias picks the command's alias now and then, as some desktops send it.
func (s *scripter) alias(cmd, alias string) string {
	if s.chance(0.15) {
		return alias
	}
	return cmd
}

type param struct{ k, v string }

// cmd sends a Recording Controls command as CAD (GET query or form POST) or
// Finesse (JSON POST, sometimes without Content-Type) would.
func (s *scripter) cmd(name string, extra ...param) {
	switch name {
	case "tag":
		name = s.alias("tag", "recordtag")
	case "pause":
		name = s.alias("pause", "pauseurl")
	}
	path := name
	if s.chance(0.05) {
		path = strings.ToUpper(name[:1]) + name[1:] // case-insensitive
	}
	a := s.a
	ps := []param{{"sender_id", a.UserID}}
	if s.chance(0.05) && name != "login" {
		ps = []param{{"extension", a.Phone}} // agent identified by extension only
	}
	if s.chance(0.3) {
		ps = append(ps, param{"peripheral_id", a.Peripheral})
	}
	ps = append(ps, extra...)
	r := Request{Kind: KindCommand, Label: strings.ToLower(name), Appends: 1}
	switch t := s.rng.IntN(10); {
	case t < 3: // CAD: GET with query
		r.Method, r.Path = "GET", "/recordingcontrols/rest/"+path+"?"+form(ps)
	case t < 5: // CAD: form POST
		r.Method, r.Path, r.ContentType = "POST", "/recordingcontrols/rest/"+path, "application/x-www-form-urlencoded"
		r.Body = []byte(form(ps))
	default: // Finesse: JSON POST, 1 in 4 without Content-Type
		r.Method, r.Path = "POST", "/recordingcontrols/rest/"+path
		if t < 8 {
			r.ContentType = "application/json"
		}
		r.Body = finesseJSON(name, ps)
	}
	s.add(r)
}

func form(ps []param) string {
	v := make([]string, 0, len(ps))
	for _, p := range ps {
		v = append(v, url.QueryEscape(p.k)+"="+url.QueryEscape(p.v))
	}
	return strings.Join(v, "&")
}

// finesseJSON encodes ps as Finesse does: camelCase ids, metadata as an object.
func finesseJSON(name string, ps []param) []byte {
	var b strings.Builder
	b.WriteByte('{')
	var meta []param
	first := true
	field := func(k, v string) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	for _, p := range ps {
		switch p.k {
		case "sender_id":
			field("senderId", p.v)
		case "peripheral_id":
			field("peripheralId", p.v)
		case "extension":
			field("extension", p.v)
		default:
			if name == "metadata" {
				meta = append(meta, p)
			} else {
				field(p.k, p.v)
			}
		}
	}
	if len(meta) > 0 {
		if !first {
			b.WriteByte(',')
		}
		b.WriteString(`"metadata":{`)
		for i, p := range meta {
			if i > 0 {
				b.WriteByte(',')
			}
			kb, _ := json.Marshal(p.k)
			vb, _ := json.Marshal(p.v)
			b.Write(kb)
			b.WriteByte(':')
			b.Write(vb)
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return []byte(b.String())
}

// signal is one call signal (API.md §3).
type signal struct {
	CallID    string `json:"call_id"`
	Extension string `json:"extension"`
	Type      string `json:"type"`
	Direction string `json:"direction,omitempty"`
	ANI       string `json:"ani,omitempty"`
	DNIS      string `json:"dnis,omitempty"`
	ACD       bool   `json:"acd,omitempty"`
	At        string `json:"at,omitempty"`
}

// signals posts one signal, or several as one array, at the simulated
// clock when it stamps them.
func (s *scripter) signals(sigs ...*signal) {
	for _, sg := range sigs {
		sg.Extension = s.a.Phone
		if s.stamp {
			sg.At = s.clock.UTC().Format(timeLayout)
		}
	}
	var body []byte
	if len(sigs) == 1 {
		body, _ = json.Marshal(sigs[0])
	} else {
		body, _ = json.Marshal(sigs)
	}
	s.add(Request{Kind: KindSignal, Label: "signal", Method: "POST", Path: "/v1/calls/events",
		ContentType: "application/json", Body: body, Appends: len(sigs)})
}

func (s *scripter) add(r Request) {
	r.Agent = s.a.Index
	s.out = append(s.out, r)
}
