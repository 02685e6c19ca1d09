package ledger

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
)

// ManifestEncodingHeader names how a message of the manifests stream holds
// its manifest: absent, the manifest's bytes as they are; "gzip"
// (ManifestGzip), those bytes compressed, for a manifest larger than the
// NATS server's max_payload (docs/manifests.md). Upload workers read both
// with ManifestBody.
const ManifestEncodingHeader = "Content-Encoding"

// ManifestGzip is the ManifestEncodingHeader value of a compressed manifest.
const ManifestGzip = "gzip"

// MaxManifestBytes bounds what ManifestBody decompresses: a manifest of
// some two million contacts.
const MaxManifestBytes = 1 << 30

// ManifestBody returns the manifest a message of the manifests stream
// holds: its data, or its data decompressed when its header says gzip,
// at most limit bytes. An encoding it does not know wraps
// ErrUnknownVersion (written by a newer server); a body that does not
// decompress wraps ErrCorrupt.
func ManifestBody(h nats.Header, data []byte, limit int64) ([]byte, error) {
	switch enc := h.Get(ManifestEncodingHeader); enc {
	case "":
		return data, nil
	case ManifestGzip:
	default:
		return nil, fmt.Errorf("manifest: %w: encoding %q", ErrUnknownVersion, enc)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("manifest: %w: gzip: %v", ErrCorrupt, err)
	}
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, limit+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("manifest: %w: gzip: %v", ErrCorrupt, err)
	case n > limit:
		return nil, fmt.Errorf("manifest: %w: more than %d bytes decompressed", ErrTooLarge, limit)
	}
	return out.Bytes(), nil
}

// gzipManifest compresses a manifest for the stream: deterministic for
// one Go release (no name, no time in the header), though messages are
// compared by what they decompress to (sameManifest), not by these bytes.
func gzipManifest(body []byte) ([]byte, error) {
	var b bytes.Buffer
	b.Grow(len(body) / 8)
	zw, err := gzip.NewWriterLevel(&b, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(body); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sameManifest reports whether a message of the manifests stream holds
// exactly body, however it is encoded.
func sameManifest(h nats.Header, data, body []byte) bool {
	got, err := ManifestBody(h, data, int64(len(body)))
	return err == nil && bytes.Equal(got, body)
}
