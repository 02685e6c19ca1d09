package ingest

import (
	"bytes"
	"net/http"
	"time"
)

// streamFlushBytes is how much of a streamed answer is gathered before it
// is sent.
const streamFlushBytes = 64 << 10

// streamPartWait is how long a client has to take each part of a streamed
// answer: the server's write timeout (serve's, a minute) bounds a whole
// answer, and an export may take longer than that to produce and send.
const streamPartWait = time.Minute

// streamed writes a long answer while it is produced, so that an answer of
// any length holds at most streamFlushBytes (and what its producer holds)
// in memory. Until the first send nothing has reached the client and an
// error can still be answered properly (pending reports it); after that
// the status is sent, and the only honest way to fail is to cut the
// connection (panic(http.ErrAbortHandler)): a client must never take a
// truncated answer for a whole one.
type streamed struct {
	w     http.ResponseWriter
	ctype string
	buf   bytes.Buffer
	sent  bool
}

// Write gathers p and sends what was gathered once it is streamFlushBytes.
func (st *streamed) Write(p []byte) (int, error) {
	st.buf.Write(p)
	if st.buf.Len() >= streamFlushBytes {
		return len(p), st.flush()
	}
	return len(p), nil
}

// WriteString is Write of a string.
func (st *streamed) WriteString(s string) (int, error) { return st.Write([]byte(s)) }

// pending reports whether nothing has been sent yet.
func (st *streamed) pending() bool { return !st.sent }

// flush sends what was gathered, with a 200 status and the content type
// before the first bytes.
func (st *streamed) flush() error {
	if !st.sent {
		st.sent = true
		st.w.Header().Set("Content-Type", st.ctype)
		st.w.WriteHeader(http.StatusOK)
	}
	// Not supported (a writer that does not reach the connection): the
	// server's timeout stays as it was.
	_ = http.NewResponseController(st.w).SetWriteDeadline(time.Now().Add(streamPartWait))
	_, err := st.w.Write(st.buf.Bytes())
	st.buf.Reset()
	return err
}
