package s3test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// FaultKind is what the proxy does to a request instead of forwarding it.
type FaultKind int

const (
	// Status503 answers 503 SlowDown without forwarding.
	Status503 FaultKind = iota
	// Reset closes the client connection abruptly (TCP RST) without an answer.
	Reset
	// Stall holds the request for Fault.Stall (or until the client gives
	// up), then forwards it.
	Stall
)

// Fault is applied to the next Count requests that match Method and
// whose path contains Path (any when empty).
type Fault struct {
	Kind   FaultKind
	Count  int
	Method string
	Path   string
	Stall  time.Duration
}

// Proxy is an HTTP proxy in front of an S3 server that injects faults.
type Proxy struct {
	URL string // give this to ferry as the endpoint

	done     chan struct{} // closed when the test ends: stalls give up
	mu       sync.Mutex
	faults   []Fault
	injected map[FaultKind]int
	requests int
}

// NewProxy starts a proxy forwarding to target, closed when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{injected: map[FaultKind]int{}, done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := p.next(r)
		if ok {
			switch f.Kind {
			case Status503:
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`))
				return
			case Reset:
				if hj, ok := w.(http.Hijacker); ok {
					if conn, _, err := hj.Hijack(); err == nil {
						if tc, ok := conn.(*net.TCPConn); ok {
							tc.SetLinger(0)
						}
						conn.Close()
						return
					}
				}
				panic(http.ErrAbortHandler)
			case Stall:
				select {
				case <-time.After(f.Stall):
				case <-r.Context().Done():
					return
				case <-p.done:
					return
				}
			}
		}
		// Keep the original Host so signatures made for the proxy's
		// address are checked against what was signed.
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(p.done) }) // runs first
	p.URL = srv.URL
	return p
}

// Inject queues a fault; faults apply in the order queued.
func (p *Proxy) Inject(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, f)
}

// Injected returns how many requests got a fault of kind k.
func (p *Proxy) Injected(k FaultKind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected[k]
}

// Requests returns how many requests reached the proxy.
func (p *Proxy) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

func (p *Proxy) next(r *http.Request) (Fault, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	for i := range p.faults {
		f := &p.faults[i]
		if f.Count <= 0 || (f.Method != "" && f.Method != r.Method) || !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		f.Count--
		p.injected[f.Kind]++
		return *f, true
	}
	return Fault{}, false
}
