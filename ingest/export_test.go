package ingest

import "time"

// SetCTIBufferBytes makes the bytes of NATS call signals waiting for a
// worker n at most (ctiBufferBytes), for a test to reach the bound
// without sending 64 MiB.
func (s *Server) SetCTIBufferBytes(n int) { s.ctiBufferBytes = n }

// SetBackupWriteWait bounds each write of a backup to d
// (backupWriteWait), for a test of a client that stops reading.
func (s *Server) SetBackupWriteWait(d time.Duration) { s.backupWriteWait = d }
