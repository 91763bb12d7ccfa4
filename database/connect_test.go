package database

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// silentServer accepts connections and never answers, as a hung server or
// a half-open proxy does.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(done)
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestConnectTimeoutCoversTheHandshake: against a server that accepts the
// TCP connection and never answers, opening gives up after the connect
// timeout on every server kind, even with no deadline on the context. The
// MySQL driver bounded only the TCP connect, and `ferry status` hung for 11
// minutes.
func TestConnectTimeoutCoversTheHandshake(t *testing.T) {
	addr := silentServer(t)
	for _, raw := range []string{"mysql://app:pw@" + addr + "/db", "postgres://app:pw@" + addr + "/db?sslmode=disable"} {
		t.Run(strings.SplitN(raw, ":", 2)[0], func(t *testing.T) {
			errc := make(chan error, 1)
			go func() {
				_, err := Open(context.Background(), raw, Options{ConnectTimeout: time.Second})
				errc <- err
			}()
			select {
			case err := <-errc:
				if !errors.Is(err, ErrUnreachable) {
					t.Fatalf("Open = %v, want ErrUnreachable", err)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Fatalf("error shows the password: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Open did not give up within 30s with a 1s connect timeout")
			}
		})
	}
}
