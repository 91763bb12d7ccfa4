package server

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Requests from web browsers are the service's other attack surface: a
// page on any site can send a "simple" cross-origin POST (text/plain, no
// preflight) to a service on the operator's loopback, and a page whose
// domain is re-bound to 127.0.0.1 (DNS rebinding) can read what the
// service answers. So:
//
//   - every request with a method that changes something is refused when
//     the browser says it comes from another origin (Sec-Fetch-Site, or an
//     Origin that is not the Host): http.CrossOriginProtection;
//   - without a token, every request, reads included, must name a Host the
//     service answers to (localhost, a loopback address, an address it
//     listens on, or one configured with Config.AllowedHosts), and must not
//     come from another site.
//
// With a token, reads stay open to any Host: status is public by design
// there, and nothing that changes the schema happens without the token.

// guard applies the checks above to h.
func (s *Server) guard(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.refuseBrowser(w, r, "cross-origin request refused: the migration service does not take changes from pages of other sites")
	}))
	protected := cop.Handler(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.Tokens) == 0 {
			if !s.hosts.allowed(r.Host) {
				s.refuseBrowser(w, r, "request for host "+quoteHost(r.Host)+" refused: without a token the service answers only to localhost, its loopback and listen addresses, and the names given with --allowed-host")
				return
			}
			if crossSite(r) {
				s.refuseBrowser(w, r, "cross-site request refused: without a token the migration service does not answer pages of other sites")
				return
			}
		}
		protected.ServeHTTP(w, r)
	})
}

func (s *Server) refuseBrowser(w http.ResponseWriter, r *http.Request, msg string) {
	s.log.Warn("refused a browser request", "method", r.Method, "path", r.URL.Path, "host", r.Host,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "remote", r.RemoteAddr)
	writeText(w, http.StatusForbidden, msg)
}

// quoteHost shows a Host header in a message, cut short.
func quoteHost(h string) string {
	if len(h) > 100 {
		h = h[:100] + "..."
	}
	return `"` + strings.ToValidUTF8(h, "?") + `"`
}

// crossSite reports whether a browser says the request comes from a page
// of another origin.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	case "same-origin", "none":
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" {
		return true // "null" and other opaque origins
	}
	return !strings.EqualFold(o.Host, r.Host)
}

// hostSet is the set of Host names the service answers to without a token.
type hostSet struct {
	mu    sync.RWMutex
	names map[string]bool // lower-case host names and addresses, without port
	any   bool            // the service listens on every address
}

func newHostSet(configured []string) *hostSet {
	h := &hostSet{names: map[string]bool{"localhost": true}}
	for _, n := range configured {
		h.add(n)
	}
	return h
}

// CheckAllowedHosts refuses an allowed host that is not one host name or
// address (with or without a port): a wildcard, a URL, or an unspecified
// address would let any web page's host through.
func CheckAllowedHosts(names []string) error {
	for _, n := range names {
		name := strings.TrimSpace(n)
		if host, _, err := net.SplitHostPort(name); err == nil {
			name = host
		}
		name = strings.Trim(name, "[]")
		switch {
		case name == "":
			return fmt.Errorf("allowed host %q is empty: name a host, such as ferry.internal", n)
		case strings.ContainsAny(name, "*?"):
			return fmt.Errorf("allowed host %q: wildcards are not supported, because they would let any web page's host through; name each host, or set a token (--token-file), with which any host may read status", n)
		case strings.Contains(name, "://") || strings.ContainsAny(name, "/ \t@"):
			return fmt.Errorf("allowed host %q is not a host name: give the name alone, such as ferry.internal", n)
		}
		if ip := net.ParseIP(name); ip != nil && ip.IsUnspecified() {
			return fmt.Errorf("allowed host %q is the unspecified address, which would allow every host: name each host, or set a token (--token-file)", n)
		}
	}
	return nil
}

// add allows a host name or address, with or without a port.
func (h *hostSet) add(name string) {
	name = strings.ToLower(strings.TrimSpace(name))
	if host, _, err := net.SplitHostPort(name); err == nil {
		name = host
	}
	name = strings.Trim(name, "[]")
	if name == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if ip := net.ParseIP(name); ip != nil && ip.IsUnspecified() {
		h.any = true
		return
	}
	h.names[name] = true
}

// listening allows the address of a listener.
func (h *hostSet) listening(addr net.Addr) {
	if addr != nil {
		h.add(addr.String())
	}
}

func (h *hostSet) allowed(hostport string) bool {
	host := strings.ToLower(hostport)
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.Trim(host, "[]")
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.any || h.names[host]
}
