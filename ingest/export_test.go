package ingest

// SetCTIBufferBytes makes the bytes of NATS call signals waiting for a
// worker n at most (ctiBufferBytes), for a test to reach the bound
// without sending 64 MiB.
func (s *Server) SetCTIBufferBytes(n int) { s.ctiBufferBytes = n }
