package ingest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/recledger/recledger/ledger"
)

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		name, query, ctype, body string
		want                     request
	}{
		{
			name:  "CAD metadata form, in order",
			ctype: "application/x-www-form-urlencoded",
			body:  "agentname=Jane+Doe&sender_id=jdoe&peripheral_id=5001",
			want: request{SenderID: "jdoe", PeripheralID: "5001",
				Params: []ledger.Param{{Key: "agentname", Value: "Jane Doe"}}},
		},
		{
			name:  "CAD stop form",
			ctype: "application/x-www-form-urlencoded",
			body:  "extension=3420&sender_id=jdoe&peripheral_id=5001",
			want:  request{SenderID: "jdoe", PeripheralID: "5001", Extension: "3420"},
		},
		// Card numbers wherever they stand (mutation testing: skipping any
		// one of these masks went unnoticed).
		{
			name:  "a card number as the sender and the peripheral is masked",
			query: "sender_id=4111111111111111&peripheral_id=5500005555555559",
			want: request{SenderID: "411111******1111", PeripheralID: "550000******5559",
				Masked: []string{"sender_id", "peripheral_id"}},
		},
		{
			name:  "a card number as a parameter's name is masked",
			query: "sender_id=jdoe&4111111111111111=x",
			want: request{SenderID: "jdoe", Params: []ledger.Param{{Key: "411111******1111", Value: "x"}},
				Masked: []string{"411111******1111"}},
		},
		{
			name:  "a card number in the refusal's message is masked",
			ctype: `application/json; charset="utf-16x4222222222222"`,
			body:  `{"sender_id":"jdoe"}`,
			want: request{Invalid: "invalid_input",
				Message: `the body's charset is "utf-**x422222***2222": send it as UTF-*`},
		},
		{
			name:  "a later value of a parameter replaces the earlier in place",
			query: "sender_id=jdoe&k=1&j=2&k=3",
			want:  request{SenderID: "jdoe", Params: []ledger.Param{{Key: "k", Value: "3"}, {Key: "j", Value: "2"}}},
		},
		{
			name:  "an unexpanded Finesse variable as the extension is invalid",
			query: "sender_id=jdoe&extension=%24%7Bext%7D",
			want: request{SenderID: "jdoe", Extension: "${ext}", Invalid: "invalid_input",
				Message: "parameter extension holds an unexpanded Finesse variable (${...})"},
		},
		{
			name:  "a text/json body that is not an object is invalid",
			ctype: "text/json",
			body:  "[1]",
			want:  request{Invalid: "invalid_input", Message: `JSON body: expected "{"`, JSON: true},
		},
		{
			// a phone line's number, as call signals carry it (it passes Luhn)
			name:  "an E.164 extension is not masked",
			query: "sender_id=jdoe&extension=%2B4915112345678",
			want:  request{SenderID: "jdoe", Extension: "+4915112345678"},
		},
		{
			// no phone number has 16 digits (E.164: at most 15)
			name:  "an extension longer than a phone number holding a card number is masked",
			query: "sender_id=jdoe&extension=4111111111111111",
			want:  request{SenderID: "jdoe", Extension: "411111******1111", Masked: []string{"extension"}},
		},
		{
			name:  "an extension that is text holding a card number is masked",
			query: "sender_id=jdoe&extension=4111+1111+1111+1111",
			want:  request{SenderID: "jdoe", Extension: "411111******1111", Masked: []string{"extension"}},
		},
		{
			name: "form body without a Content-Type",
			body: "extension=3420&sender_id=jdoe",
			want: request{SenderID: "jdoe", Extension: "3420"},
		},
		{
			name:  "other content types are not read",
			ctype: "text/plain",
			query: "sender_id=jdoe",
			body:  "extension=3420",
			want:  request{SenderID: "jdoe"},
		},
		{
			name: "a JSON body after a byte-order mark, no Content-Type",
			body: "\ufeff{\"sender_id\":\"jdoe\"}",
			want: request{SenderID: "jdoe", JSON: true},
		},
		{
			name:  "a card number as a bad member's name is masked in the message",
			ctype: "text/json",
			body:  "{\"sender_id\":\"jdoe\",\"4111\\t1111\\t1111\\t1111\":[1]}",
			want: request{SenderID: "jdoe", JSON: true, Invalid: ledger.ReasonInvalidInput,
				Message: `JSON body: member "411111******1111": must be a string or a number`},
		},
		{
			name:  "a dollar and a brace that open no variable are text",
			query: "sender_id=jdoe&note=pre+%24%7Bopen",
			want:  request{SenderID: "jdoe", Params: []ledger.Param{{Key: "note", Value: "pre ${open"}}},
		},
		{
			name:  "a desktop's own code page: Windows-1252 bytes read as such",
			ctype: "application/x-www-form-urlencoded",
			query: "sender_id=jdoe&agentname=caf%E9",
			body:  "note=na\xefve+%80+ok",
			want: request{SenderID: "jdoe",
				Params: []ledger.Param{{Key: "agentname", Value: "café"}, {Key: "note", Value: "naïve € ok"}}},
		},
		{
			name:  "UTF-8 escapes are kept as sent",
			query: "sender_id=jdoe&agentname=caf%C3%A9",
			want:  request{SenderID: "jdoe", Params: []ledger.Param{{Key: "agentname", Value: "café"}}},
		},
		{
			name:  "a JSON body is UTF-8, or invalid",
			ctype: "text/json",
			body:  "{\"sender_id\":\"jdoe\",\"agentname\":\"caf\xe9\"}",
			want: request{SenderID: "jdoe", JSON: true, Params: []ledger.Param{{Key: "agentname", Value: "caf\ufffd"}},
				Invalid: ledger.ReasonInvalidInput, Message: "JSON body: not UTF-8 text"},
		},
		{
			name:  "Finesse start, text/json",
			ctype: "text/json",
			body:  `{"sender_id":"jdoe","peripheral_id":"5001"}`,
			want:  request{SenderID: "jdoe", PeripheralID: "5001", JSON: true},
		},
		{
			name: "Finesse start, no content type, numbers keep their text",
			body: ` {"senderId":"jdoe","peripheralId":5001}`,
			want: request{SenderID: "jdoe", PeripheralID: "5001", JSON: true},
		},
		{
			name:  "Finesse metadata object first, member order kept",
			ctype: "application/json",
			body:  `{"sender_id":"jdoe","note":"x","metadata":{"zeta":"1","account":10.70,"agentname":"Jane"}}`,
			want: request{SenderID: "jdoe", JSON: true, Params: []ledger.Param{
				{Key: "zeta", Value: "1"}, {Key: "account", Value: "10.70"}, {Key: "agentname", Value: "Jane"}, {Key: "note", Value: "x"}}},
		},
		{
			name:  "metadata as a JSON string in the query; body wins over query",
			query: "sender_id=old&metadata=%7B%22account%22%3A%22123%22%7D&b=2&a=1",
			ctype: "application/x-www-form-urlencoded",
			body:  "sender_id=jdoe",
			want: request{SenderID: "jdoe", Params: []ledger.Param{
				{Key: "account", Value: "123"}, {Key: "b", Value: "2"}, {Key: "a", Value: "1"}}},
		},
		{
			name:  "card number masked, key listed",
			ctype: "text/json",
			body:  `{"sender_id":"jdoe","metadata":{"account":"4111 1111 1111 1111"}}`,
			want: request{SenderID: "jdoe", JSON: true, Masked: []string{"account"},
				Params: []ledger.Param{{Key: "account", Value: "411111******1111"}}},
		},
		{
			name:  "unexpanded Finesse variable",
			ctype: "text/json",
			body:  `{"sender_id":"${userId}","peripheral_id":"5001"}`,
			want: request{SenderID: "${userId}", PeripheralID: "5001", JSON: true, Invalid: "invalid_input",
				Message: "parameter sender_id holds an unexpanded Finesse variable (${...})"},
		},
		{
			name:  "malformed JSON keeps what was read",
			ctype: "text/json",
			body:  `{"sender_id":"jdoe","peripheral_id":`,
			want: request{SenderID: "jdoe", JSON: true, Invalid: "invalid_input",
				Message: `JSON body: member "peripheral_id": malformed JSON: unexpected end`},
		},
		{
			name:  "nested value refused",
			ctype: "text/json",
			body:  `{"sender_id":["a"]}`,
			want: request{JSON: true, Invalid: "invalid_input",
				Message: `JSON body: member "sender_id": must be a string or a number`},
		},
		{
			name:  "a metadata parameter that is not a JSON object is invalid, and kept as sent",
			query: "sender_id=jdoe&metadata=account%3D4111111111111111",
			want: request{SenderID: "jdoe", Params: []ledger.Param{{Key: "metadata", Value: "account=411111******1111"}},
				Masked: []string{"metadata"}, Invalid: "invalid_input",
				Message: "parameter metadata: must be a JSON object of key to value"},
		},
		{
			name:  "a metadata parameter with a nested value is invalid, and kept whole",
			query: "sender_id=jdoe&metadata=%7B%22account%22%3A%221%22%2C%22x%22%3A%7B%22y%22%3A1%7D%7D&note=n",
			want: request{SenderID: "jdoe", Params: []ledger.Param{{Key: "metadata", Value: `{"account":"1","x":{"y":1}}`}, {Key: "note", Value: "n"}},
				Invalid: "invalid_input", Message: `parameter metadata: key "x": must be a string or a number`},
		},
		{
			name:  "a metadata parameter cut short is invalid",
			query: "sender_id=jdoe&metadata=%7B%22account%22%3A",
			want: request{SenderID: "jdoe", Params: []ledger.Param{{Key: "metadata", Value: `{"account":`}},
				Invalid: "invalid_input", Message: `parameter metadata: key "account": malformed JSON: unexpected end`},
		},
		{
			name:  "text after a metadata parameter's object is invalid",
			query: "sender_id=jdoe&metadata=%7B%22account%22%3A1%7D+x",
			want: request{SenderID: "jdoe", Params: []ledger.Param{{Key: "metadata", Value: `{"account":1} x`}},
				Invalid: "invalid_input", Message: "parameter metadata: unexpected data after the object"},
		},
		{
			name:  "a metadata member with a nested value is invalid, and kept as sent",
			ctype: "text/json",
			body:  `{"sender_id":"jdoe","metadata":{"account":"4111 1111 1111 1111","x":{"y":1}},"note":"n"}`,
			want: request{SenderID: "jdoe", JSON: true,
				Params: []ledger.Param{{Key: "metadata", Value: `{"account":"411111******1111","x":{"y":*}}`}}, // every digit beside a card number masked
				Masked: []string{"metadata"}, Invalid: "invalid_input",
				Message: `JSON body: member metadata: key "x": must be a string or a number`},
		},
		{
			name:  "a metadata object in the body wins over metadata text in the query",
			query: "sender_id=jdoe&metadata=%7B%22account%22%3A%221%22%7D",
			ctype: "text/json",
			body:  `{"metadata":{"agentname":"Jane"}}`,
			want:  request{SenderID: "jdoe", JSON: true, Params: []ledger.Param{{Key: "agentname", Value: "Jane"}}},
		},
		{
			name:  "an empty metadata parameter is none",
			query: "sender_id=jdoe&metadata=+&account=1",
			want:  request{SenderID: "jdoe", Params: []ledger.Param{{Key: "account", Value: "1"}}},
		},
		{
			// a 13-digit card number is within a phone number's 15 digits
			name:  "an extension that is text holding a short card number is masked",
			query: "sender_id=jdoe&extension=x4222222222222",
			want:  request{SenderID: "jdoe", Extension: "x422222***2222", Masked: []string{"extension"}},
		},
		{
			name:  "a UTF-32 body is invalid",
			ctype: "text/json; charset=UTF-32BE",
			body:  `{"sender_id":"jdoe"}`,
			want:  request{Invalid: "invalid_input", Message: `the body's charset is "UTF-32BE": send it as UTF-8`},
		},
		{
			name:  "a UCS-2 form is invalid",
			ctype: "application/x-www-form-urlencoded; charset=ucs-2",
			body:  "sender_id=jdoe",
			want:  request{Invalid: "invalid_input", Message: `the body's charset is "ucs-2": send it as UTF-8`},
		},
		{
			name:  "parameters without a name are none",
			query: "sender_id=jdoe&=x&&b=2",
			want:  request{SenderID: "jdoe", Params: []ledger.Param{{Key: "b", Value: "2"}}},
		},
		{
			name:  "a second JSON object after the body's is invalid",
			ctype: "text/json",
			body:  `{"sender_id":"jdoe"} {"sender_id":"other"}`,
			want: request{SenderID: "jdoe", JSON: true, Invalid: "invalid_input",
				Message: "JSON body: unexpected data after the object"},
		},
		{
			name:  "bad escape in a form body",
			ctype: "application/x-www-form-urlencoded",
			body:  "sender_id=jdoe&x=%zz&y=1",
			want: request{SenderID: "jdoe", Params: []ledger.Param{{Key: "y", Value: "1"}}, Invalid: "invalid_input",
				Message: "form body: bad escape in parameter 2"},
		},
		{
			name:  "the first bad escape is named",
			query: "sender_id=%zz&a=1&x=%zz",
			want: request{Params: []ledger.Param{{Key: "a", Value: "1"}}, Invalid: "invalid_input",
				Message: "query string: bad escape in parameter 1"},
		},
		{
			name:  "bad escape in the query",
			query: "sender_id=jdoe&x=%zz",
			want: request{SenderID: "jdoe", Invalid: "invalid_input",
				Message: "query string: bad escape in parameter 2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseParams(tc.query, tc.ctype, []byte(tc.body))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseParams:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseParams(f *testing.F) {
	f.Add("sender_id=jdoe", "", "")
	f.Add("", "application/x-www-form-urlencoded", "agentname=Jane&sender_id=jdoe&peripheral_id=5001")
	f.Add("", "text/json", `{"sender_id":"jdoe","metadata":{"account":"4111111111111111","n":1.5}}`)
	f.Add("metadata=%7B%22a%22%3A%224111-1111-1111-1111%22%7D", "", `{"x":"${y}"}`)
	f.Add("a=%zz&&=&b", "multipart/form-data; boundary=x", "{")
	f.Fuzz(func(t *testing.T, query, ctype, body string) {
		req := parseParams(query, ctype, []byte(body))
		values := []string{req.SenderID, req.PeripheralID, req.Extension, req.Message}
		for _, p := range req.Params {
			values = append(values, p.Key, p.Value)
		}
		for _, v := range values {
			if d, ok := cardLeft(v); ok {
				t.Fatalf("card number %s left in %q", d, v)
			}
		}
		if (req.Invalid == "") != (req.Message == "") {
			t.Fatalf("Invalid %q with message %q", req.Invalid, req.Message)
		}
		for _, v := range values[:3] {
			if i := strings.Index(v, "${"); i >= 0 && strings.Contains(v[i:], "}") && req.Invalid == "" {
				t.Fatalf("unexpanded variable accepted: %+v", req)
			}
		}
	})
}

func BenchmarkParseParams(b *testing.B) {
	body := []byte(`{"sender_id":"jdoe","peripheral_id":"5001","metadata":{"account":"10.70","agentname":"Jane Doe","callback":"2026-12-01","ref":"4111 1111 1111 1111"}}`)
	b.ReportAllocs()
	for b.Loop() {
		parseParams("", "text/json", body)
	}
}

// TestManyParametersKeepTheirPlaces: past orderedIndexAt parameters the
// list is searched through a map; a later value still replaces the
// earlier in place, whether the key was seen before the map was made or
// after.
func TestManyParametersKeepTheirPlaces(t *testing.T) {
	var query []string
	var want []ledger.Param
	for i := 1; i <= orderedIndexAt+4; i++ {
		k := fmt.Sprintf("k%02d", i)
		query = append(query, k+"=a")
		want = append(want, ledger.Param{Key: k, Value: "a"})
	}
	query = append(query, "k03=b", "sender_id=jdoe", fmt.Sprintf("k%02d=c", orderedIndexAt+3))
	want[2].Value, want[orderedIndexAt+2].Value = "b", "c"
	got := parseParams(strings.Join(query, "&"), "", nil)
	if got.SenderID != "jdoe" || !reflect.DeepEqual(got.Params, want) {
		t.Fatalf("parseParams: sender %q\n got %v\nwant %v", got.SenderID, got.Params, want)
	}
}
