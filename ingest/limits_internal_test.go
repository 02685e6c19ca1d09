package ingest

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// holdFeedBody takes a body's declared length, or the most a body may be
// when it declares none, and makes the next wait once the budget is
// taken, until a body is let go.
func TestHoldFeedBodyWaitsForTheBudget(t *testing.T) {
	s := &Server{feedBytes: semaphore.NewWeighted(feedBodyBudget)}
	var releases []func()
	for range feedBodyBudget / maxFeedBody {
		r := httptest.NewRequest("POST", "/v1/calls/events", nil)
		r.ContentLength = -1 // chunked: up to maxFeedBody
		rel, err := s.holdFeedBody(r)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, rel)
	}
	small := httptest.NewRequest("POST", "/v1/calls/events", nil)
	small.ContentLength = 100
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.holdFeedBody(small.WithContext(ctx)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a body beyond the budget: %v, want it to wait", err)
	}
	releases[0]()
	rel, err := s.holdFeedBody(small)
	if err != nil {
		t.Fatalf("once a body is let go: %v", err)
	}
	rel()
	empty := httptest.NewRequest("POST", "/v1/calls/events", nil)
	empty.ContentLength = 0
	if _, err := s.holdFeedBody(empty.WithContext(ctx)); err != nil {
		t.Fatalf("an empty body waited: %v", err)
	}
}
