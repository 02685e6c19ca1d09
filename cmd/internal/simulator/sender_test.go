package simulator

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestSenderSendsTheRequestAsScripted: the server sees the script's
// method, path and query as written (bad input included), its
// Content-Type or none at all, the body and the token.
func TestSenderSendsTheRequestAsScripted(t *testing.T) {
	type seen struct {
		method, uri, ct, auth, body string
		hasCT                       bool
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, hasCT := r.Header["Content-Type"]
		got <- seen{r.Method, r.RequestURI, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), string(b), hasCT}
		w.Write([]byte(`{"outcome":"applied"}`))
	}))
	defer srv.Close()
	s := newSender(1, "tok")
	defer s.close()

	cases := []struct {
		req  Request
		want seen
	}{
		{Request{Method: "GET", Path: "/recordingcontrols//x/../tag?user=${agentId}&x=%2F..%2Fa+b"},
			seen{method: "GET", uri: "/recordingcontrols//x/../tag?user=${agentId}&x=%2F..%2Fa+b", auth: "Bearer tok"}},
		{Request{Method: "POST", Path: "/recordingcontrols/pause", Body: []byte(`{"user":"a1"}`)},
			seen{method: "POST", uri: "/recordingcontrols/pause", auth: "Bearer tok", body: `{"user":"a1"}`}},
		{Request{Method: "PUT", Path: "/v1/config/site", ContentType: "application/json", Body: []byte(`{}`)},
			seen{method: "PUT", uri: "/v1/config/site", ct: "application/json", hasCT: true, auth: "Bearer tok", body: `{}`}},
	}
	for _, c := range cases {
		var status int
		var answer string
		if err := s.send(srv.URL, c.req, func(code int, body []byte) { status, answer = code, string(body) }); err != nil {
			t.Fatalf("%s %s: %v", c.req.Method, c.req.Path, err)
		}
		if g := <-got; g != c.want {
			t.Errorf("%s %s: server saw %+v, want %+v", c.req.Method, c.req.Path, g, c.want)
		}
		if status != 200 || answer != `{"outcome":"applied"}` {
			t.Errorf("%s %s: answer %d %q", c.req.Method, c.req.Path, status, answer)
		}
	}
}

// TestSenderNeverSendsARequestTwice: a GET command whose connection breaks
// before the answer may have been appended; sent again it would be
// appended twice, and the check would count it once.
func TestSenderNeverSendsARequestTwice(t *testing.T) {
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	s := newSender(1, "")
	defer s.close()
	for _, m := range []string{"GET", "PUT"} {
		arrived.Store(0)
		err := s.send(srv.URL, Request{Method: m, Path: "/recordingcontrols/pause?user=a1"}, func(int, []byte) {
			t.Errorf("%s: an answer from a server that gave none", m)
		})
		if err == nil {
			t.Errorf("%s: no error for a connection closed without an answer", m)
		}
		if n := arrived.Load(); n != 1 {
			t.Errorf("%s: the server got the request %d times, want once", m, n)
		}
	}
}

// TestSenderDialsIPv6: a server on an IPv6 address is reached (fasthttp
// dials IPv4 only unless told: a walk's run against http://[::1]:port
// sent nothing, and passed --strict).
func TestSenderDialsIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	s := newSender(1, "")
	defer s.close()
	if err := s.send(srv.URL, Request{Method: "GET", Path: "/healthz"}, func(int, []byte) {}); err != nil {
		t.Fatalf("%s: %v", srv.URL, err)
	}
}
