package ledger

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzManifestBody reads arbitrary messages of the manifests stream as an
// upload worker does: never a panic, never more than the limit, the data
// itself without an encoding, and a manifest compressed by the server
// read back whole.
func FuzzManifestBody(f *testing.F) {
	z, err := gzipManifest([]byte(`{"format":"recledger.manifest/1","day":"2026-11-23","contacts":[]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", []byte(`{"day":"2026-11-23"}`), false)
	f.Add(ManifestGzip, z, false)
	f.Add(ManifestGzip, z[:len(z)/2], false)
	f.Add("br", []byte("x"), false)
	f.Add("", []byte(`{"day":"2026-11-23"}`), true)
	f.Fuzz(func(t *testing.T, enc string, data []byte, compress bool) {
		orig := data
		if compress {
			var err error
			if data, err = gzipManifest(orig); err != nil {
				t.Fatal(err)
			}
		}
		h := nats.Header{}
		if enc != "" {
			h.Set(ManifestEncodingHeader, enc)
		}
		const limit = 1 << 16
		got, err := ManifestBody(h, data, limit)
		switch {
		case err != nil && h.Get(ManifestEncodingHeader) == "":
			t.Fatalf("no encoding: %v", err)
		case err == nil && h.Get(ManifestEncodingHeader) == "" && !bytes.Equal(got, data):
			t.Fatal("no encoding: not the data")
		case err == nil && len(got) > limit && h.Get(ManifestEncodingHeader) != "":
			t.Fatalf("%d bytes decompressed, limit %d", len(got), limit)
		case err != nil && !errors.Is(err, ErrUnknownVersion) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge):
			t.Fatalf("an error of no documented kind: %v", err)
		}
		if compress && h.Get(ManifestEncodingHeader) == ManifestGzip {
			// What the server compressed reads back as it was, within
			// the limit.
			switch {
			case len(orig) <= limit && (err != nil || !bytes.Equal(got, orig)):
				t.Fatalf("a compressed manifest of %d bytes reads back as %d (%v)", len(orig), len(got), err)
			case len(orig) > limit && !errors.Is(err, ErrTooLarge):
				t.Fatalf("a compressed manifest over the limit: %v", err)
			}
		}
	})
}

// TestManifestBodyKeepsItsBounds: upload workers read every manifest
// with ManifestBody: a compressed one of exactly the limit is whole, one
// byte more is refused (not cut short and taken for the manifest), an
// encoding of a newer server is not taken for plain bytes, and a damaged
// body is corrupt.
func TestManifestBodyKeepsItsBounds(t *testing.T) {
	body := bytes.Repeat([]byte(`{"contact":"c1"},`), 100)
	z, err := gzipManifest(body)
	if err != nil {
		t.Fatal(err)
	}
	gz := nats.Header{ManifestEncodingHeader: []string{ManifestGzip}}
	if got, err := ManifestBody(gz, z, int64(len(body))); err != nil || !bytes.Equal(got, body) {
		t.Errorf("a manifest of exactly the limit: %v", err)
	}
	if _, err := ManifestBody(gz, z, int64(len(body))-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a manifest one byte over the limit: %v, want ErrTooLarge", err)
	}
	br := nats.Header{ManifestEncodingHeader: []string{"br"}}
	if _, err := ManifestBody(br, body, MaxManifestBytes); !errors.Is(err, ErrUnknownVersion) {
		t.Errorf("an encoding not known: %v, want ErrUnknownVersion", err)
	}
	if _, err := ManifestBody(gz, z[:len(z)/2], MaxManifestBytes); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a body cut in half: %v, want ErrCorrupt", err)
	}
	if got, err := ManifestBody(nil, body, 1); err != nil || !bytes.Equal(got, body) {
		t.Errorf("a plain manifest: %v", err)
	}
}
