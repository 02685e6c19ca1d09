package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/recledger/recledger/ledger"
)

// decodeConfigPart decodes a configuration document or part strictly into
// v, and names the member at fault in its error: root is the part's path
// ("site", "teams.sales", "" for the whole document). encoding/json says
// `unknown field "upload_tme"` without saying where; an administrator
// wants "site.upload_tme" (API.md §4: "the field at fault").
func decodeConfigPart(b []byte, root string, v any) error {
	at := func(p string) string {
		if f := joinPath(root, p); f != "" {
			return f
		}
		return "document"
	}
	// What encoding/json would take and an administrator did not mean: a
	// body that is not UTF-8 (read with U+FFFD in place of its letters),
	// null for the whole part (every setting at its default), a member
	// given twice (the last would win).
	if !utf8.Valid(b) {
		return &ledger.FieldError{Field: at(""), Message: "is not UTF-8 (RFC 8259)"}
	}
	b = bytes.TrimPrefix(b, []byte("\ufeff")) // a byte order mark, as commands and signals take it
	if string(bytes.TrimSpace(b)) == "null" {
		return &ledger.FieldError{Field: at(""), Message: "must be a JSON object, got null (DELETE removes a part)"}
	}
	if p, ok := duplicateMember(b); ok {
		return &ledger.FieldError{Field: at(p), Message: "is given twice"}
	}
	err := decodeStrict(b, v)
	if err == nil {
		doc, err := decodeNumbers(b)
		if err != nil {
			return nil // decodeStrict took it: cannot happen
		}
		// encoding/json also takes "Team" for "team": not how a setting
		// is written.
		if p, m, ok := badMember(doc, reflect.TypeOf(v)); ok {
			return &ledger.FieldError{Field: joinPath(root, p), Message: m}
		}
		// Configuration is appended to the ledger as it is written, with
		// no masking (a masked name or extension would be another one):
		// a card number typed into it is refused instead.
		if p, ok := cardInConfig(root, doc); ok {
			f, _ := maskCards(at(p))
			return &ledger.FieldError{Field: f, Message: "holds what reads as a card number, and configuration is stored in the ledger as written"}
		}
		if p, ok := variableInConfig(root, doc); ok {
			return &ledger.FieldError{Field: at(p), Message: "holds an unexpanded variable (${...}): the template that wrote it did not fill it"}
		}
		return nil
	}
	field, msg := root, "not a valid document: "+err.Error()
	if se := (*json.SyntaxError)(nil); errors.As(err, &se) {
		// Where, as the tokens file's errors say it (a walk's --config
		// with a stray brace said neither line nor column).
		line, col := lineCol(b, se.Offset)
		msg = fmt.Sprintf("not a valid document: line %d, column %d: %v", line, col, err)
	}
	var te *json.UnmarshalTypeError
	doc, docErr := decodeNumbers(b)
	switch {
	case docErr != nil: // not JSON: no member to name
	case errors.As(err, &te) || strings.HasPrefix(err.Error(), "json: unknown field "):
		if p, m, ok := badMember(doc, reflect.TypeOf(v)); ok {
			field, msg = joinPath(root, p), m
		} else if te != nil && te.Field != "" {
			field, msg = joinPath(root, te.Field), "must be a JSON "+jsonKind(te.Type)+", got a JSON "+te.Value
			if jsonKind(te.Type) == "number" {
				// 1.5 or 1e400 for a count: the kind is right, the number is not.
				msg = "must be a whole number that fits, got " + strings.TrimPrefix(te.Value, "number ")
			}
		}
	}
	if field == "" {
		field = "document"
	}
	return &ledger.FieldError{Field: field, Message: msg}
}

// badMember finds, in a decoded JSON value, the first member (in key
// order) that t has no field for, or whose value is of another JSON kind
// than its field takes; it returns its dotted path and why.
func badMember(doc any, t reflect.Type) (path, msg string, ok bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if doc == nil {
		return "", "", false // null decodes into anything
	}
	if want, got := jsonKind(t), kindOf(doc); want != got && !(want == "object" && t.Kind() == reflect.Interface) {
		return "", "must be a JSON " + want + ", got a JSON " + got, true
	}
	switch d := doc.(type) {
	case map[string]any:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			var ft reflect.Type
			switch t.Kind() {
			case reflect.Map:
				ft = t.Elem()
			case reflect.Struct:
				f, ok := fieldByJSONName(t, k)
				if !ok {
					return k, "is not a setting here (a misspelt one is refused rather than dropped)", true
				}
				if name := jsonName(f); name != k {
					return k, fmt.Sprintf("is written %q", name), true
				}
				ft = f.Type
			default:
				continue
			}
			if p, m, ok := badMember(d[k], ft); ok {
				return joinPath(k, p), m, true
			}
		}
	case []any:
		for i, e := range d {
			if e == nil {
				// a list's null would be taken as an empty pattern or a
				// zero classifier (every call, 0 %): not what was meant
				return "[" + strconv.Itoa(i) + "]", "is null: a list holds values (leave it out)", true
			}
			if p, m, ok := badMember(e, t.Elem()); ok {
				return joinPath("["+strconv.Itoa(i)+"]", p), m, true
			}
		}
	}
	return "", "", false
}

// phoneMember reports the configuration members that hold phone-system
// numbers: extensions and the patterns of numbers. Call signals carry
// such numbers unmasked (docs/rules-decisions.md): an E.164 number passes
// Luhn one time in ten, and refused it could not be put on an exclusion
// list. One of more digits than a phone number has is not one
// (phoneDigits). Their values are checked by their own rules (digits, + # and *).
// A peripheral id is not one: commands carry it masked like any value,
// so a card-like one configured would refuse every command that names it
// (wrong_peripheral).
func phoneMember(name string) bool {
	switch name {
	case "extension", "inclusion", "exclusion", "number_pattern":
		return true
	}
	return false
}

// cardInConfig finds a card number (as maskCards reads one) in the part's
// path root or in a member name or string value of doc (but a phoneMember's
// values), and returns the path of the member that holds it ("" for root
// itself).
func cardInConfig(root string, doc any) (string, bool) {
	return stringInConfig(root, doc, func(member, s string) bool {
		_, ok := maskCards(s)
		return ok && !(phoneMember(member) && phoneDigits(s))
	})
}

// maxPhoneDigits is the most digits a phone number has (E.164: 15).
const maxPhoneDigits = 15

// phoneDigits reports whether s has no more digits than a phone number:
// a card number of 16 to 19 digits cannot be one, and is masked or
// refused as a card number wherever it stands.
func phoneDigits(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
		}
	}
	return n <= maxPhoneDigits
}

// variableInConfig finds an unexpanded ${...} (a template's, as a Finesse
// workflow's unfilled variable) in the part's path root, a member name or
// a string value of doc: `config` would hand a desktop a server_host of
// "${host}".
func variableInConfig(root string, doc any) (string, bool) {
	return stringInConfig(root, doc, func(_, s string) bool { return holdsFinesseVariable(s) })
}

// stringInConfig finds, in the part's path root or in a member name or
// string value of doc (in key order), the first for which bad (given the
// member's name, "" for root and names) holds, and returns its path.
func stringInConfig(root string, doc any, bad func(member, s string) bool) (string, bool) {
	if bad("", root) {
		return "", true
	}
	var walk func(p, member string, v any) (string, bool)
	walk = func(p, member string, v any) (string, bool) {
		switch d := v.(type) {
		case string:
			return p, bad(member, d)
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(d)) {
				if bad("", k) {
					return joinPath(p, k), true
				}
				if q, ok := walk(joinPath(p, k), k, d[k]); ok {
					return q, true
				}
			}
		case []any:
			for i, e := range d {
				if q, ok := walk(joinPath(p, "["+strconv.Itoa(i)+"]"), member, e); ok {
					return q, true
				}
			}
		}
		return "", false
	}
	return walk("", "", doc)
}

// decodeNumbers decodes b into any, numbers as json.Number (a number too
// large for a float64, 1e400, is still a number to name).
func decodeNumbers(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	err := dec.Decode(&doc)
	return doc, err
}

// maxConfigDepth bounds the nesting duplicateMember walks: a configuration
// is a few levels deep, and a body of a million brackets must not grow
// the stack by a frame each (encoding/json refuses past 10,000).
const maxConfigDepth = 64

// duplicateMember finds the first member given twice in one object of
// the JSON value b, and returns its dotted path; ok is false when there
// is none, or b is not JSON (the decoder says so then).
func duplicateMember(b []byte) (path string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	depth := 0
	var walk func(p string) (string, bool, error)
	walk = func(p string) (string, bool, error) {
		if depth++; depth > maxConfigDepth {
			// deeper than any configuration: the decoder refuses it
			return "", false, errors.New("too deep")
		}
		defer func() { depth-- }()
		t, err := dec.Token()
		if err != nil {
			return "", false, err
		}
		switch t {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return "", false, err
				}
				k, _ := kt.(string)
				if seen[k] {
					return joinPath(p, k), true, nil
				}
				seen[k] = true
				if q, dup, err := walk(joinPath(p, k)); dup || err != nil {
					return q, dup, err
				}
			}
			_, err = dec.Token()
			return "", false, err
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				if q, dup, err := walk(joinPath(p, "["+strconv.Itoa(i)+"]")); dup || err != nil {
					return q, dup, err
				}
			}
			_, err = dec.Token()
			return "", false, err
		}
		return "", false, nil
	}
	path, ok, _ = walk("")
	return path, ok
}

// kindOf names the JSON kind of a decoded value.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case []any:
		return "array"
	}
	return "object"
}

// fieldByJSONName finds the field of struct t that a JSON member k
// decodes into, as encoding/json matches them (its tag name, or its Go
// name, either in any case).
func fieldByJSONName(t reflect.Type, k string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := jsonName(f)
		if name == "-" {
			continue
		}
		if strings.EqualFold(name, k) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonName is the member name a struct field is written as.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func joinPath(root, p string) string {
	switch {
	case root == "":
		return p
	case p == "":
		return root
	case strings.HasPrefix(p, "["):
		return root + p
	}
	return root + "." + p
}

// jsonKind names the JSON kind a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array"
	}
	return "object"
}
