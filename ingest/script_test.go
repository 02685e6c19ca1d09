package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

var (
	ulidRe = regexp.MustCompile(`\b[0-9A-HJKMNP-TV-Z]{26}\b`)
	hashRe = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
)

// TestScripts runs the golden HTTP exchanges in testdata/*.txt against the
// real stack. Directives:
//
//	config                          apply the vendor-example configuration
//	http METHOD PATH [ctype=…] [auth=…]   send the input as the body; print status and body
//
// IDs and hashes are printed as <id> and <hash>. Rewrite with -rewrite.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		s := newStackClock(t, nil, tickClock(time.Date(2026, 11, 23, 14, 3, 0, 0, time.UTC)))
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "config":
				s.configure()
				return "ok"
			case "http":
				if len(d.CmdArgs) < 2 {
					d.Fatalf(t, "http METHOD PATH")
				}
				var ctype string
				var hdr []string
				for _, a := range d.CmdArgs[2:] {
					switch a.Key {
					case "ctype":
						ctype = a.Vals[0]
					case "auth":
						hdr = append(hdr, "Authorization", "Bearer "+a.Vals[0])
					}
				}
				path := d.CmdArgs[1].Key // datadriven splits "?a=b" at the first '='
				if len(d.CmdArgs[1].Vals) > 0 {
					path += "=" + strings.Join(d.CmdArgs[1].Vals, ",")
				}
				r := s.do(d.CmdArgs[0].Key, path, ctype, d.Input, hdr...)
				return fmt.Sprintf("%d %s\n%s", r.Status, r.Header.Get("Content-Type"), redact(r.Raw))
			}
			d.Fatalf(t, "unknown directive %q", d.Cmd)
			return ""
		})
	})
}

func redact(body string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(body), "", "  ") == nil {
		body = b.String()
	}
	body = ulidRe.ReplaceAllString(body, "<id>")
	body = hashRe.ReplaceAllString(body, "<hash>")
	return strings.TrimRight(body, "\n") + "\n"
}
