package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/recledger/recledger/ledger"
)

// Parameter names of the Recording Controls API (API.md §2).
const (
	paramSender     = "sender_id"
	paramPeripheral = "peripheral_id"
	paramExtension  = "extension"
	paramMetadata   = "metadata"
)

// finesseVariable opens a Finesse variable the desktop did not expand:
// ${name}, the closing brace after it.
const finesseVariable = "${"

// holdsFinesseVariable reports whether v holds an unexpanded ${...}.
func holdsFinesseVariable(v string) bool {
	i := strings.Index(v, finesseVariable)
	return i >= 0 && strings.IndexByte(v[i+len(finesseVariable):], '}') >= 0
}

// request is a Recording Controls request's parameters, merged, masked and
// checked, ready to become a ledger.Command.
type request struct {
	SenderID     string
	PeripheralID string
	Extension    string
	Params       []ledger.Param
	Masked       []string
	Invalid      string // "invalid_input" when the input could not be accepted
	Message      string
	JSON         bool // the parameters included a JSON body
}

// orderedParams is a parameter list where a later value of a key replaces
// the earlier one in place, so that the order is the order of first sight.
// A request has a handful of parameters: they are searched in the list
// until there are more than orderedIndexAt, then through a map.
type orderedParams struct {
	list []ledger.Param
	idx  map[string]int
}

const orderedIndexAt = 16

func (o *orderedParams) set(k, v string) {
	if i, ok := o.find(k); ok {
		o.list[i].Value = v
		return
	}
	if o.idx != nil {
		o.idx[k] = len(o.list)
	}
	o.list = append(o.list, ledger.Param{Key: k, Value: v})
	if o.idx == nil && len(o.list) > orderedIndexAt {
		o.idx = make(map[string]int, 2*len(o.list))
		for i, p := range o.list {
			o.idx[p.Key] = i
		}
	}
}

func (o *orderedParams) find(k string) (int, bool) {
	if o.idx != nil {
		i, ok := o.idx[k]
		return i, ok
	}
	for i := range o.list {
		if o.list[i].Key == k {
			return i, true
		}
	}
	return 0, false
}

func (o *orderedParams) get(k string) (string, bool) {
	i, ok := o.find(k)
	if !ok {
		return "", false
	}
	return o.list[i].Value, true
}

// parseParams merges a request's parameters (API.md §2): the query string,
// then a form body, then a JSON object body; later wins. Query and form
// parameters keep the order of the raw text. The JSON body is read token by
// token, so its member order is kept too. Card numbers are masked before
// anything else sees the values; unexpanded Finesse variables and malformed
// input set Invalid. It never fails: whatever could be read is returned, so
// that refused requests are still recorded as evidence.
func parseParams(rawQuery, contentType string, body []byte) request {
	var (
		req  request
		all  orderedParams
		meta []ledger.Param // members of a JSON `metadata` object
		bad  []string       // why the input is invalid, first reason first
	)
	invalid := func(format string, a ...any) { bad = append(bad, fmt.Sprintf(format, a...)) }

	qs, err := parseQuery(rawQuery)
	if err != nil {
		invalid("query string: %v", err)
	}
	for _, p := range qs {
		all.set(canonicalKey(p.Key), p.Value)
	}

	mediaType := mediaTypeOf(contentType)
	if cs := wideCharset(contentType); cs != "" {
		// Form and JSON bodies are read as UTF-8 (and ASCII, which it
		// holds); UTF-16 or UTF-32 bytes read so are no parameters at all,
		// and the answer was "names no sender_id" (a walk).
		invalid("the body's charset is %.20q: send it as UTF-8", cs)
		body = nil
	}
	// A byte-order mark some editors and platforms put before JSON is
	// not part of it.
	body = bytes.TrimPrefix(body, []byte("\ufeff"))
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	switch {
	case (mediaType == "application/x-www-form-urlencoded" || mediaType == "") && !bytes.HasPrefix(trimmed, []byte("{")):
		// A body without a Content-Type that is not JSON is read as a form.
		fs, err := parseQuery(string(body))
		if err != nil {
			invalid("form body: %v", err)
		}
		for _, p := range fs {
			all.set(canonicalKey(p.Key), p.Value)
		}
	case mediaType == "text/json" || mediaType == "application/json" || bytes.HasPrefix(trimmed, []byte("{")):
		if len(trimmed) == 0 {
			break
		}
		req.JSON = true
		if !utf8.Valid(trimmed) {
			// JSON is UTF-8 (RFC 8259); its reader would put U+FFFD in
			// place of the bytes, and the value would be lost unsaid.
			invalid("JSON body: not UTF-8 text")
		}
		members, m, err := parseJSONObject(trimmed)
		if err != nil {
			invalid("JSON body: %v", err)
		}
		for _, p := range members {
			all.set(canonicalKey(p.Key), p.Value)
		}
		meta = m // flattened below, in place of any metadata text
	}

	// Flatten `metadata`: a JSON object from the body, or a JSON-encoded
	// object in a query or form parameter.
	if v, ok := all.get(paramMetadata); ok && meta == nil && strings.TrimSpace(v) != "" {
		m, err := parseMetadataString(v)
		if err != nil {
			invalid("parameter metadata: %v", err)
			// Not read as a whole: the text as sent is the refused
			// request's evidence, masked below as any value is, rather
			// than the members read before the fault.
			m = []ledger.Param{{Key: paramMetadata, Value: v}}
		}
		meta = m
	}
	var params orderedParams
	for _, p := range meta {
		params.set(p.Key, p.Value)
	}
	for _, p := range all.list {
		switch p.Key {
		case paramSender:
			req.SenderID = p.Value
		case paramPeripheral:
			req.PeripheralID = p.Value
		case paramExtension:
			req.Extension = p.Value
		case paramMetadata:
			// flattened above
		default:
			params.set(p.Key, p.Value)
		}
	}
	req.Params = params.list

	// Card numbers first: nothing below may copy a value in clear.
	maskField := func(key string, v *string) {
		if m, ok := maskCards(*v); ok {
			*v = m
			req.Masked = appendUnique(req.Masked, key)
		}
	}
	maskField(paramSender, &req.SenderID)
	maskField(paramPeripheral, &req.PeripheralID)
	if !ledger.ValidExtension(req.Extension) || !phoneDigits(req.Extension) {
		// An extension is a phone line's number, which call signals carry
		// unmasked too (docs/rules-decisions.md): +4915112345678 passes
		// Luhn, and masked it is no line at all. Any other text is
		// masked, and so is a number longer than a phone number can be
		// (an auditor's walk logged in on 4111111111111111, in clear).
		maskField(paramExtension, &req.Extension)
	}
	for i := range req.Params {
		p := &req.Params[i]
		if m, ok := maskCards(p.Key); ok { // a card number as a key is still a card number
			p.Key = m
			req.Masked = appendUnique(req.Masked, m)
		}
		maskField(p.Key, &p.Value)
	}

	checkVar := func(key, v string) {
		if holdsFinesseVariable(v) {
			invalid("parameter %s holds an unexpanded Finesse variable (${...})", key)
		}
	}
	checkVar(paramSender, req.SenderID)
	checkVar(paramPeripheral, req.PeripheralID)
	checkVar(paramExtension, req.Extension)
	for _, p := range req.Params {
		checkVar(p.Key, p.Value)
	}
	if len(bad) > 0 {
		req.Invalid = ledger.ReasonInvalidInput
		req.Message = bad[0]
		if m, ok := maskCards(req.Message); ok {
			req.Message = m
		}
	}
	return req
}

// wideCharset returns a Content-Type's charset when it is one whose text
// is not ASCII bytes (UTF-16, UTF-32, in any case); "" otherwise.
func wideCharset(contentType string) string {
	if !strings.Contains(strings.ToLower(contentType), "charset") {
		return ""
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	cs := strings.ToLower(params["charset"])
	if strings.HasPrefix(cs, "utf-16") || strings.HasPrefix(cs, "utf-32") || strings.HasPrefix(cs, "ucs-") {
		return params["charset"]
	}
	return ""
}

// mediaTypeOf is the media type of a Content-Type, lower case, without
// parameters ("" when it does not parse). The types desktops send, as they
// send them, are answered without parsing.
func mediaTypeOf(contentType string) string {
	switch contentType {
	case "", "application/x-www-form-urlencoded", "application/json", "text/json":
		return contentType
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	return mediaType
}

// canonicalKey resolves the camelCase aliases of the fixed parameters.
func canonicalKey(k string) string {
	switch strings.ToLower(k) {
	case "sender_id", "senderid":
		return paramSender
	case "peripheral_id", "peripheralid":
		return paramPeripheral
	case "extension":
		return paramExtension
	case "metadata":
		return paramMetadata
	}
	return k
}

// parseQuery splits application/x-www-form-urlencoded text into its
// parameters in order. Bad escapes are reported; the parameters that could
// be read are still returned.
func parseQuery(s string) ([]ledger.Param, error) {
	var (
		out   []ledger.Param
		first error
	)
	for s != "" {
		var part string
		part, s, _ = strings.Cut(s, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(v)
		if err := errors.Join(err1, err2); err != nil {
			if first == nil {
				first = fmt.Errorf("bad escape in parameter %d", len(out)+1)
			}
			continue
		}
		if key == "" {
			continue
		}
		out = append(out, ledger.Param{Key: fromCodePage(key), Value: fromCodePage(val)})
	}
	return out, first
}

// fromCodePage reads a query or form text that is not UTF-8 as Windows-1252
// (Latin-1's superset), the code page of a desktop that escapes its own
// bytes: "caf%E9" is "café", where the UTF-8 reading would put U+FFFD in
// place of the letter and lose it. UTF-8 text, the usual, is kept as sent.
func fromCodePage(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	if t, err := charmap.Windows1252.NewDecoder().String(s); err == nil {
		return t
	}
	return s
}

// parseJSONObject reads a JSON object body member by member, in order.
// Values may be strings, numbers (kept as their literal text), booleans or
// null (""). A `metadata` member holding an object is returned apart, its
// own members in order. On malformed input it returns what it read so far.
func parseJSONObject(b []byte) (members, metadata []ledger.Param, err error) {
	if m, md, ok := quickJSONObject(b); ok {
		return m, md, nil
	}
	return decodeJSONObject(b)
}

// decodeJSONObject is parseJSONObject with json.Decoder, for any input.
func decodeJSONObject(b []byte) (members, metadata []ledger.Param, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, err
	}
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return members, metadata, err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return members, metadata, fmt.Errorf("member %s: %w", shownKey(key), plainJSONError(err))
		}
		if canonicalKey(key) == paramMetadata && firstByte(raw) == '{' {
			m, err := metadataMembers(raw)
			if err != nil {
				// Read, but not taken: kept as sent, as parseParams keeps
				// a metadata parameter it cannot read.
				members = append(members, ledger.Param{Key: key, Value: string(raw)})
				return members, metadata, fmt.Errorf("member metadata: %w", err)
			}
			metadata = m
			continue
		}
		v, err := scalar(raw)
		if err != nil {
			return members, metadata, fmt.Errorf("member %s: %w", shownKey(key), err)
		}
		members = append(members, ledger.Param{Key: key, Value: v})
	}
	if err := expectDelim(dec, '}'); err != nil {
		return members, metadata, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return members, metadata, errors.New("unexpected data after the object")
	}
	return members, metadata, nil
}

// parseMetadataString decodes a `metadata` parameter sent as text: a
// JSON-encoded object.
func parseMetadataString(v string) ([]ledger.Param, error) {
	raw := []byte(strings.TrimSpace(v))
	if firstByte(raw) != '{' {
		return nil, errors.New("must be a JSON object of key to value")
	}
	m, err := metadataMembers(raw)
	if err != nil {
		return m, err
	}
	return m, nil
}

// metadataMembers reads the members of a metadata object, in order.
func metadataMembers(raw []byte) ([]ledger.Param, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var out []ledger.Param
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return out, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out, fmt.Errorf("key %s: %w", shownKey(key), plainJSONError(err))
		}
		s, err := scalar(v)
		if err != nil {
			return out, fmt.Errorf("key %s: %w", shownKey(key), err)
		}
		out = append(out, ledger.Param{Key: key, Value: s})
	}
	if err := expectDelim(dec, '}'); err != nil {
		return out, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return out, errors.New("unexpected data after the object")
	}
	return out, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return plainJSONError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q", string(want))
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", plainJSONError(err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", errors.New("expected a member name")
	}
	return key, nil
}

// scalar turns a JSON value into parameter text.
func scalar(raw json.RawMessage) (string, error) {
	switch firstByte(raw) {
	case '"':
		// The decoder has checked the value: without escapes and in valid
		// UTF-8 (Unmarshal would replace bad bytes) it is its own text.
		if t := bytes.TrimSpace(raw); len(t) >= 2 && bytes.IndexByte(t, '\\') < 0 && utf8.Valid(t) {
			return string(t[1 : len(t)-1]), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", plainJSONError(err)
		}
		return s, nil
	case 'n':
		return "", nil
	case '{', '[':
		return "", errors.New("must be a string or a number")
	}
	return string(bytes.TrimSpace(raw)), nil // number or boolean, as sent
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// plainJSONError keeps the kind of a JSON error but not the input bytes it
// may quote, so that a rejected body cannot leak a value into the ledger.
func plainJSONError(err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("malformed JSON at offset %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("malformed JSON: unexpected end")
	}
	return errors.New("malformed JSON")
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// shownKey is a member name as an error message quotes it: masked first,
// since quoting escapes the separators (a tab becomes \t) that the
// message's own masking reads a card number by.
func shownKey(k string) string {
	if m, ok := maskCards(k); ok {
		k = m
	}
	return strconv.Quote(k)
}
