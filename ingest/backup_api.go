package ingest

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/recledger/recledger/ledger"
)

// Headers of GET /v1/backup: what the copy holds, sent before it.
const (
	headerHeadSeq  = "Recledger-Head-Seq"
	headerHeadHash = "Recledger-Head-Hash"
	headerSite     = "Recledger-Site"
)

// defaultBackupWriteWait is how long one write of a backup may take
// before the copy is cut off (Server.backupWriteWait): a client that stops
// reading would otherwise hold the copy's read transaction open, and with
// it the pages appends would reuse.
const defaultBackupWriteWait = 30 * time.Second

// handleBackup serves GET /v1/backup (admin): a consistent copy of the
// ledger file, taken while the server goes on appending. The body is a
// ledger file (serve, verify and replay open it); the headers say the
// last event it holds. A copy that fails once begun is cut off (the
// client sees fewer bytes than Content-Length), never completed with
// something else.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(s.backupWriteWait)); err != nil {
		// A wrapper of w that hides the connection: the server's write
		// timeout then cuts a copy that takes longer.
		s.log.Warn("backup: the answer's write deadline cannot be moved; a copy that takes longer than the server's write timeout is cut off", logKeyErr, err)
	}
	begun := time.Now()
	var info ledger.BackupInfo
	n, err := s.events.Backup(r.Context(), deadlineWriter{w: w, rc: rc, wait: s.backupWriteWait}, func(i ledger.BackupInfo) error {
		info = i
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(i.Size, 10))
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="recledger-%s-%d.db"`, s.site, i.Head))
		h.Set(headerHeadSeq, strconv.FormatUint(i.Head, 10))
		h.Set(headerHeadHash, i.Hash)
		h.Set(headerSite, s.site)
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return errHeadOnly // the headers alone: no copy is read
		}
		return nil
	})
	if errors.Is(err, errHeadOnly) {
		return
	}
	if err == nil {
		s.met.countBackup(backupSent, time.Now())
		s.log.Info("backup sent", logKeyHead, info.Head, logKeyBytes, n, logKeyTook, time.Since(begun), logKeyPrincipal, principalOf(r), logKeyClient, r.RemoteAddr)
		return
	}
	if info.Size == 0 { // begin was not called: nothing sent yet
		s.met.countBackup(backupFailed, time.Time{})
		if r.Context().Err() == nil {
			s.writeError(w, r, err)
		}
		return
	}
	s.met.countBackup(backupCutOff, time.Time{})
	s.log.Warn("backup cut off: the client got an incomplete copy (fewer bytes than Content-Length): "+s.cutOffBecause(r, err),
		logKeyHead, info.Head, logKeyBytes, n, logKeyErr, err, logKeyPrincipal, principalOf(r), logKeyClient, r.RemoteAddr)
	panic(http.ErrAbortHandler)
}

// errHeadOnly ends the backup of a HEAD request once its headers are set.
var errHeadOnly = errors.New("HEAD: headers only")

// cutOffBecause says why a copy once begun was cut off, as far as the
// server can tell.
func (s *Server) cutOffBecause(r *http.Request, err error) string {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("the client took no bytes for %s", s.backupWriteWait)
	case s.stopping.Load():
		return "the server is stopping (the shutdown timeout cuts a copy still in flight)"
	case r.Context().Err() != nil:
		return "the client went away"
	}
	return "the copy could not be read or sent"
}

// deadlineWriter gives each write of a backup wait.
type deadlineWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	wait time.Duration
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.wait))
	return d.w.Write(p)
}
