package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/ledger"
)

func TestParseSignals(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	evs, err := parseSignals([]byte(` {"call_id":"c-1","extension":"3420","type":"ringing","direction":"inbound","ani":"+13125550100","dnis":"8001","acd":true,"at":"2026-11-23T14:02:11.1204+01:00"} `), now, ledger.TransportHTTP, "p")
	if err != nil || len(evs) != 1 {
		t.Fatal(evs, err)
	}
	sig := evs[0].Data.(ledger.CallSignal)
	if sig.At.String() != "2026-11-23T13:02:11.120Z" || sig.Transport != "http" || sig.Principal != "p" {
		t.Fatalf("%+v", sig)
	}
	// every member is carried into the event, as the feed sent it
	if sig.CallID != "c-1" || sig.Extension != "3420" || sig.Type != "ringing" || sig.Direction != "inbound" ||
		sig.ANI != "+13125550100" || sig.DNIS != "8001" || !sig.ACD {
		t.Fatalf("members: %+v", sig)
	}
	// a resent signal of last year, and one from a clock a few hours ahead
	for _, at := range []string{"2025-11-23T14:00:00Z", "2026-11-24T13:59:59Z"} {
		if _, err := parseSignals([]byte(`{"call_id":"c-1","extension":"3420","type":"ended","at":"`+at+`"}`), now, ledger.TransportHTTP, ""); err != nil {
			t.Errorf("at %s: %v", at, err)
		}
	}
	// a byte order mark first, and RFC 3339's lower-case t and z, are taken
	evs, err = parseSignals([]byte("\ufeff"+`{"call_id":"c-1","extension":"3420","type":"ringing","at":"2026-11-23t13:02:11.12z"}`), now, ledger.TransportHTTP, "")
	if err != nil || evs[0].Data.(ledger.CallSignal).At.String() != "2026-11-23T13:02:11.120Z" {
		t.Fatalf("BOM, lower-case t and z: %v %v", evs, err)
	}
	// A stray byte anywhere, a control character in the extension, or an
	// extension longer than 64 characters: refused, the field named.
	for body, want := range map[string]string{
		"{\"call_id\":\"c-1\",\"extension\":\"3420\",\"type\":\"ringing\",\"ani\":\"\xff\"}": "not UTF-8",
		`{"call_id":"c-1","extension":"34\u000120","type":"ringing"}`:                        "extension",
		`{"call_id":"c-1","extension":"` + strings.Repeat("3", 65) + `","type":"ringing"}`:   "extension",
		`{"call_id":"c-1","extension":"` + strings.Repeat("3", 64) + `","type":"ringing"}`:   "",
	} {
		_, err := parseSignals([]byte(body), now, ledger.TransportHTTP, "")
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%.60s: %v, want %q", body, err, want)
		}
	}
	// Without at, or with an empty one, the server stamps the signal.
	evs, err = parseSignals([]byte(`[{"call_id":"c-1","extension":"3420","type":"ended"},{"call_id":"c-1","extension":"3420","type":"ended","at":""}]`), now, ledger.TransportNATS, "")
	if err != nil || len(evs) != 2 {
		t.Fatalf("signals without at: %v %v", evs, err)
	}
	for i, e := range evs {
		if sig := e.Data.(ledger.CallSignal); !sig.At.Equal(now) || sig.Transport != ledger.TransportNATS {
			t.Fatalf("signal %d: default at %v, transport %q", i, sig.At, sig.Transport)
		}
	}
	// A batch is appended in the order given, not sorted by time (sorted,
	// a call whose feed dated its ended before its answered was split).
	evs, err = parseSignals([]byte(`[
		{"call_id":"j2","extension":"3708","type":"ringing","at":"2026-11-23T13:09:00Z"},
		{"call_id":"j2","extension":"3708","type":"answered","at":"2026-11-23T13:09:04Z"},
		{"call_id":"j2","extension":"3708","type":"ended","at":"2026-11-23T13:09:02Z"}]`), now, ledger.TransportHTTP, "")
	var order []string
	for _, e := range evs {
		order = append(order, e.Data.(ledger.CallSignal).Type)
	}
	if want := "ringing,answered,ended"; err != nil || strings.Join(order, ",") != want {
		t.Errorf("batch order %v %v, want %s", order, err, want)
	}
	for body, field := range map[string]string{
		`[{"call_id":"c-1","extension":"1","type":"ringing"},{"extension":"1","type":"ringing"}]`: "call_id",
		`{"call_id":"c","type":"ringing"}`:                                                           "extension",
		`{"call_id":"c","extension":"1","type":"ring"}`:                                              "type",
		`{"call_id":"c","extension":"1","type":"held","direction":"sideways"}`:                       "direction",
		`{"call_id":"c","extension":"1","type":"held","at":"yesterday"}`:                             "at",
		`{"call_id":"c","extension":"1","type":"held","at":"9999-12-31T23:30:00Z"}`:                  "at", // a broken clock
		`{"call_id":"c","extension":"1","type":"held","at":"2026-11-24T14:00:01Z"}`:                  "at", // more than a day ahead
		`{"call_id":"c","extension":"1","type":"held","at":"0001-01-01T00:00:00Z"}`:                  "at",
		`{"call_id":"c","extension":"1","type":"held","ani":"` + strings.Repeat("1", 65) + `"}`:      "ani",
		`{"call_id":"c","extension":"1","type":"held","dnis":"` + strings.Repeat("1", 65) + `"}`:     "dnis",
		`{"call_id":"x\ud800","extension":"1","type":"held"}`:                                        "call_id",   // a lone surrogate
		`{"call_id":"x\u0000","extension":"1","type":"held"}`:                                        "call_id",   // a control character
		`{"call_id":"c","extension":"1\ufffd","type":"held"}`:                                        "extension", // two such would read as one
		`{"call_id":"c","extension":"3420 ","type":"held"}`:                                          "extension", // matches no agent's
		`{"call_id":" c","extension":"3420","type":"held"}`:                                          "call_id",
		`{"call_id":"${callId}","extension":"3420","type":"held"}`:                                   "call_id", // a template's unfilled variable
		`{"call_id":"c","extension":"3420","type":"held","dnis":"${dnis}"}`:                          "dnis",
		`{"call_id":"c","extension":"3420","type":"held","ani":"${ani}"}`:                            "ani",
		`{"call_id":"c","extension":"${extension}","type":"held"}`:                                   "extension",
		`{"call_id":"c-${1","extension":"3420","type":"held"}`:                                       "", // no closing brace: not a variable
		`{"call_id":"c","extension":"1","type":"held","ani":"` + strings.Repeat("\uff11", 64) + `"}`: "", // 64 characters: taken
	} {
		_, err := parseSignals([]byte(body), now, ledger.TransportHTTP, "")
		if field == "" {
			if err != nil {
				t.Errorf("%s: %v", body, err)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.Fields["field"] != field || statusOf(ae) != 400 {
			t.Errorf("%s: %v", body, err)
		}
	}
	// Read by the Decoder path: the signal and the member at fault are named.
	for _, c := range []struct {
		body  string
		index int
		field string
		msg   string // what the message says of the value wanted
	}{
		{`[{"call_id":"s","extension":"1","type":"ringing"},{"call_id":"s","extension":"1","type":"ended","zz":1}]`, 1, "zz", ""},
		{`{"call_id":"s","extension":"1","type":"ringing","acd":"true"}`, 0, "acd", "must be true or false, got a JSON string"},
		{`{"call_id":"s","extension":"1","type":"ringing","at":5}`, 0, "at", "must be an RFC 3339 time as a string, or null, got a JSON number"},
		{`{"call_id":77,"extension":"1","type":"ringing"}`, 0, "call_id", "must be a string, got a JSON number"},
		{`{"call_id":"s","extension":"1","type":"ringing","Type":"x"}`, 0, "Type", ""},
		{`{"call_id":"s-10","call_id":"s-11","extension":"1","type":"ringing"}`, 0, "call_id", ""},
		{`[{"call_id":"s","extension":"1","type":"ringing"},"x"]`, 1, "", ""},
	} {
		_, err := parseSignals([]byte(c.body), now, ledger.TransportHTTP, "")
		var ae *apiError
		if !errors.As(err, &ae) || statusOf(ae) != 400 || ae.Fields["index"] != c.index || (c.field != "" && ae.Fields["field"] != c.field) ||
			strings.Contains(ae.Message, "Go struct") || !strings.Contains(ae.Message, c.msg) {
			t.Errorf("%s: %v %+v, want index %d field %q", c.body, err, ae, c.index, c.field)
		}
	}
	for _, body := range []string{"{\"call_id\":\"u-2\xff\",\"extension\":\"1\",\"type\":\"held\"}", ``, `[]`, `"x"`, `{"call_id":"c","extension":"1","type":"held","colour":"red"}`, `{} {}`,
		`[{"call_id":"c","extension":"1","type":"held"}] x`, `{"call_id":"c","extension":"1","type":"held"} {"call_id":"d"}`} {
		if _, err := parseSignals([]byte(body), now, ledger.TransportHTTP, ""); statusOf(err) != 400 {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func FuzzParseSignals(f *testing.F) {
	f.Add(`{"call_id":"c-1","extension":"3420","type":"ringing","at":"2026-11-23T14:02:11.120Z"}`)
	f.Add(`[{"call_id":"c-1","extension":"3420","type":"ended","direction":"inbound","acd":true}]`)
	f.Add(`[{"call_id":"","extension":"3420","type":"x"}]`)
	f.Fuzz(func(t *testing.T, body string) {
		evs, err := parseSignals([]byte(body), time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC), ledger.TransportHTTP, "")
		if err != nil {
			if statusOf(err) != 400 {
				t.Fatalf("status %d for %v", statusOf(err), err)
			}
			return
		}
		if len(evs) == 0 || len(evs) > maxSignalsPerBatch {
			t.Fatalf("%d events accepted", len(evs))
		}
		for _, e := range evs {
			s := e.Data.(ledger.CallSignal)
			if _, field, _ := checkSignal(callSignalIn{CallID: s.CallID, Extension: s.Extension, Type: s.Type, Direction: s.Direction, ANI: s.ANI, DNIS: s.DNIS}, s.At); field != "" {
				t.Fatalf("accepted an invalid signal: %+v (%s)", s, field)
			}
			if s.At.IsZero() {
				t.Fatalf("no time: %+v", s)
			}
		}
	})
}

func FuzzParseTokens(f *testing.F) {
	f.Add(`{"tokens":[{"name":"a","token":"0123456789abcdef0","roles":["command"]}],"networks":[{"cidr":"10.0.0.0/8","roles":["admin"]}]}`)
	f.Add(`{"networks":[{"cidr":"::1/128","roles":["auditor","admin"]}]}`)
	f.Add(`{"networks":[{"cidr":"::1/128","roles":["auditor"]}]} {"networks":[{"cidr":"0.0.0.0/0","roles":["admin"]}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		tok, err := ParseTokens([]byte(doc))
		if err != nil {
			if !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("error without ErrInvalid: %v", err)
			}
			return
		}
		if !json.Valid([]byte(doc)) {
			t.Fatalf("accepted what is not one JSON document: %q", doc)
		}
		var counts struct{ Tokens, Networks []json.RawMessage }
		if err := json.Unmarshal([]byte(doc), &counts); err != nil || len(counts.Tokens) != len(tok.tokens) || len(counts.Networks) != len(tok.networks) {
			t.Fatalf("%q: %d tokens and %d networks taken, the document has %d and %d (%v)", doc, len(tok.tokens), len(tok.networks), len(counts.Tokens), len(counts.Networks), err)
		}
		for _, e := range tok.tokens {
			if len(e.token) < minTokenLen || len(e.roles) == 0 {
				t.Fatalf("accepted %+v", e)
			}
		}
		for _, n := range tok.networks {
			if !n.prefix.IsValid() || len(n.roles) == 0 {
				t.Fatalf("accepted %+v", n)
			}
		}
	})
}

// TestSignalBounds: a batch of 1,000 signals and a call_id of 128
// characters are taken; one more of either is refused, naming the bound.
func TestSignalBounds(t *testing.T) {
	now := time.Date(2026, 11, 23, 14, 0, 0, 0, time.UTC)
	batch := func(n int) []byte {
		one := `{"call_id":"c-1","extension":"3420","type":"ringing"}`
		return []byte("[" + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + "]")
	}
	if evs, err := parseSignals(batch(1000), now, ledger.TransportHTTP, ""); err != nil || len(evs) != 1000 {
		t.Fatalf("1,000 signals: %d %v", len(evs), err)
	}
	if _, err := parseSignals(batch(1001), now, ledger.TransportHTTP, ""); err == nil || !strings.Contains(err.Error(), "at most 1000 call signals per batch, got 1001") {
		t.Fatalf("1,001 signals: %v", err)
	}
	id := func(n int) []byte {
		return []byte(`{"call_id":"` + strings.Repeat("é", n) + `","extension":"3420","type":"ringing"}`)
	}
	if _, err := parseSignals(id(128), now, ledger.TransportHTTP, ""); err != nil {
		t.Fatalf("a call_id of 128 characters: %v", err)
	}
	if _, err := parseSignals(id(129), now, ledger.TransportHTTP, ""); err == nil || !strings.Contains(err.Error(), "longer than 128 characters") {
		t.Fatalf("a call_id of 129 characters: %v", err)
	}
}
