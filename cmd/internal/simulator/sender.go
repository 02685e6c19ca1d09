package simulator

import (
	"errors"
	"time"

	"github.com/valyala/fasthttp"
)

// sender sends the play's requests (configuration, call signals,
// commands) with fasthttp's client. The simulator shares the machine with
// the server it measures: net/http's client took 45–55 µs of CPU a request
// here (two goroutines a connection, a header map a request), fasthttp's
// 18–22 µs, which leaves that much more of the cores to the server. The
// few reads of the check (GET /v1/verify, /metrics, /v1/events) keep
// Config.Client.
type sender struct {
	c     *fasthttp.Client
	token string
}

// sendTimeout bounds one request, as Config.Client's default does.
const sendTimeout = 30 * time.Second

// noRetry: a request is never sent twice. fasthttp would send a GET or
// PUT again after a broken connection, and a command sent by GET (as Cisco
// Agent Desktop sends them) that reached the server before the break would
// be appended twice, and the check would count it once.
func noRetry(*fasthttp.Request, int, error) (resetTimeout, retry bool) { return false, false }

func newSender(concurrency int, token string) *sender {
	return &sender{token: token, c: &fasthttp.Client{
		Name:                "recledger-simulate",
		MaxConnsPerHost:     concurrency + 8,
		MaxConnWaitTimeout:  sendTimeout,
		MaxIdleConnDuration: 10 * time.Second, // closed before the server's idle timeout (2 min) can race a request
		ReadTimeout:         sendTimeout,
		WriteTimeout:        sendTimeout,
		MaxResponseBodySize: 1 << 20,
		DialDualStack:       true, // else an IPv6 address is not dialed at all (a walk: http://[::1]:port)
		RetryIfErr:          noRetry,
		// The path and query go as the script wrote them: bad input
		// (`${…}` values, odd escapes) must reach the server unchanged.
		DisablePathNormalizing: true,
	}}
}

// send sends req to base and calls read with the answer's status and body
// (valid only during the call). An error means no answer.
func (s *sender) send(base string, req Request, read func(status int, body []byte)) error {
	hr, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer func() {
		fasthttp.ReleaseRequest(hr)
		fasthttp.ReleaseResponse(resp)
	}()
	hr.SetRequestURI(base + req.Path)
	hr.Header.SetMethod(req.Method)
	// A request the script sends without a Content-Type (as Finesse
	// sends its JSON) goes without one: fasthttp would add its own.
	hr.Header.SetNoDefaultContentType(true)
	if req.ContentType != "" {
		hr.Header.SetContentType(req.ContentType)
	}
	if s.token != "" {
		hr.Header.Set("Authorization", "Bearer "+s.token)
	}
	if req.Body != nil {
		hr.SetBodyRaw(req.Body)
	}
	if err := s.c.Do(hr, resp); err != nil {
		if errors.Is(err, fasthttp.ErrConnectionClosed) {
			return errors.New("the server closed the connection before answering")
		}
		return err
	}
	read(resp.StatusCode(), resp.Body())
	return nil
}

// close closes the idle connections.
func (s *sender) close() { s.c.CloseIdleConnections() }
