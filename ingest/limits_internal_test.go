package ingest

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// A large body takes from the budget the bytes it has brought, not
// what it declared: a body beyond the budget waits until another lets
// go, and one that declares a megabyte and sends nothing holds nothing.
func TestFeedBodiesTakeTheBudgetAsTheyArrive(t *testing.T) {
	s := &Server{feedBytes: semaphore.NewWeighted(100)}
	a := httptest.NewRequest("POST", "/v1/calls/events", strings.NewReader(strings.Repeat("a", 100)))
	releaseA := s.holdFeedBody(a)
	if b, err := io.ReadAll(a.Body); err != nil || len(b) != 100 {
		t.Fatalf("the first body: %d bytes, %v", len(b), err)
	}
	declared := httptest.NewRequest("POST", "/v1/calls/events", strings.NewReader(""))
	declared.ContentLength = 1 << 20 // and nothing sent yet
	defer s.holdFeedBody(declared)()

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	b := httptest.NewRequest("POST", "/v1/calls/events", strings.NewReader("b")).WithContext(ctx)
	releaseB := s.holdFeedBody(b)
	if _, err := io.ReadAll(b.Body); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a body beyond the budget: %v, want it to wait", err)
	}
	releaseB()
	releaseA()
	// A body refused as too large is dropped without taking any.
	big := httptest.NewRequest("POST", "/v1/calls/events", strings.NewReader(strings.Repeat("d", 1000)))
	defer s.holdFeedBody(big)()
	drainRefusedBody(big)
	c := httptest.NewRequest("POST", "/v1/calls/events", strings.NewReader(strings.Repeat("c", 100)))
	defer s.holdFeedBody(c)()
	if b, err := io.ReadAll(c.Body); err != nil || len(b) != 100 {
		t.Fatalf("once the first let go: %d bytes, %v", len(b), err)
	}
}
