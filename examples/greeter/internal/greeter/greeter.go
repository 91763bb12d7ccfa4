// Package greeter is the whole of the example service used by
// docs/releases.md: an HTTP server that greets user 1 by a name it reads
// from the database. Its two releases differ only in the column they read.
package greeter

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferrydb/ferry/database"
)

// Main runs release version of the service, answering GET / with the
// result of query, until SIGINT or SIGTERM. The database comes from
// FERRY_DATABASE_URL and FERRY_SCHEMA, as ferry launch passes it.
func Main(version, query string) {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	url := os.Getenv("FERRY_DATABASE_URL")
	if url == "" {
		url = database.DefaultURL
	}
	db, err := database.Open(ctx, url, database.Options{Schema: os.Getenv("FERRY_SCHEMA")})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var name string
		if err := db.QueryRowContext(r.Context(), query).Scan(&name); err != nil {
			http.Error(w, fmt.Sprintf("greeter %s: %v", version, err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "Hello, %s! (greeter %s)\n", name, version)
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("greeter %s listening on %s\n", version, ln.Addr())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("greeter %s stopped\n", version)
}
