package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ferrydb/ferry/internal/testdb"
	"github.com/ferrydb/ferry/migrate"
	"github.com/ferrydb/ferry/server"
)

// browser starts headless Chromium (FERRY_TEST_CHROMIUM: Debian's
// /usr/bin/chromium in CI) and returns a context for chromedp.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := os.Getenv("FERRY_TEST_CHROMIUM")
	if exe == "" {
		if os.Getenv("FERRY_TEST_REQUIRE_DB") == "1" {
			t.Fatal("FERRY_TEST_CHROMIUM is not set but FERRY_TEST_REQUIRE_DB=1 (CI): set it to Debian's /usr/bin/chromium")
		}
		t.Skip("FERRY_TEST_CHROMIUM not set: skipping the browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelCtx(); cancelAlloc() })
	return ctx
}

// text returns an element's text content, read in one step in the page
// (a live redraw may replace the element between two steps).
func text(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(`+strconv.Quote(sel)+`) || {textContent: ""}).textContent`))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// waitJS waits until a JavaScript condition holds on the page.
func waitJS(ctx context.Context, t *testing.T, what, cond string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " | token=" + (document.getElementById("token")||{}).value + " button=" + (document.getElementById("upgrade-button")||{}).textContent + " err=" + document.getElementById("js-error").outerHTML + " | " + document.body.innerText.slice(0, 200)`))
		t.Fatalf("waiting for %s (%s): %v\npage: %s", what, cond, err, state)
	}
}

// idle is true when the console is not redrawing its main part.
const idle = `document.getElementById("main").getAttribute("aria-busy") !== "true"`

// TestConsoleInBrowser drives the console in headless Chromium: the page
// shows the version; an upgrade from another process appears live; the
// Upgrade button with the token applies the pending migrations and a
// history row appears; a wrong token shows the error; a read-only service
// shows no button. It saves a screenshot.
func TestConsoleInBrowser(t *testing.T) {
	db := testdb.New(t, "sqlite")
	dir := migrationsDir(t, map[string]string{
		"00001_accounts.sql": "-- +ferry up\nCREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT);\n",
		"00002_orders.sql":   "-- +ferry up\nCREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER);\n",
		"00003_items.sql":    "-- +ferry up\nCREATE TABLE items (id INTEGER PRIMARY KEY);\nCREATE INDEX items_id ON items (id);\n",
		"00004_notes.sql":    "-- +ferry up\n-- +ferry contract\nALTER TABLE accounts DROP COLUMN name;\n",
	})
	other, err := migrate.New(db.DB.DB, db.Dialect, migrate.WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Up(context.Background(), migrate.UpOptions{To: 1}); err != nil {
		t.Fatal(err)
	}
	s := newService(t, db, server.Config{Tokens: []server.Token{{Name: "ops", Secret: token}}}, migrate.WithDir(dir))
	// After the service: the browser, and its event stream, end first.
	ctx := browser(t)

	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#current-version"))); err != nil {
		t.Fatal(err)
	}
	if v := text(ctx, t, "#current-version"); v != "1" {
		t.Fatalf("the page shows version %q, want 1", v)
	}

	// Another process applies migration 2: the open page follows.
	if _, err := other.Up(context.Background(), migrate.UpOptions{To: 2}); err != nil {
		t.Fatal(err)
	}
	waitJS(ctx, t, "the page to show version 2 on its own", `document.getElementById("current-version").textContent === "2"`)

	// A wrong token: an error, nothing applied. The page is redrawn
	// (aria-busy) on the status event that brought version 2; typing
	// starts when it is done, as chromedp's nodes are those of one DOM.
	waitJS(ctx, t, "the redraw to end", idle)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), "not-the-token"),
		chromedp.Click(chromedp.CSS("#upgrade-button")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(ctx, t, "the wrong-token error", `!document.getElementById("js-error").hidden && document.getElementById("js-error").textContent.includes("Wrong or missing token")`)
	if v := text(ctx, t, "#current-version"); v != "2" {
		t.Fatalf("after a wrong token the page shows version %q, want 2", v)
	}

	// The right token, up to version 3: applied, and a history row. The
	// refused upgrade redrew the page, moving the form (which chromedp
	// sees as new nodes): the form is filled in and sent in one step of
	// the page's own, once the redraw is done.
	waitJS(ctx, t, "the redraw after the refusal to end", idle)
	fill := fmt.Sprintf(`document.getElementById("token").value = %q;
		document.getElementById("to").value = "3";
		document.getElementById("upgrade-button").click(); undefined`, token)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fill)); err != nil {
		t.Fatal(err)
	}
	waitJS(ctx, t, "version 3 after the Upgrade button", `document.getElementById("current-version").textContent === "3"`)
	waitJS(ctx, t, "a history row for version 3", `[...document.querySelectorAll("#history-rows tr")].some(r => r.cells[1] && r.cells[1].textContent === "3" && r.textContent.includes("ops@"))`)
	if msg := text(ctx, t, "#message"); !strings.Contains(msg, "upgrade success") {
		t.Errorf("message after the upgrade: %q", msg)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "console.png")
	if d := os.Getenv("FERRY_TEST_SCREENSHOT_DIR"); d != "" {
		out = filepath.Join(d, "console.png")
	}
	if err := os.WriteFile(out, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)

	// Read-only: no button.
	roServer := mustServer(t, db, server.Config{ReadOnly: true}, dir)
	ro := httptest.NewServer(roServer.Handler())
	defer func() { roServer.Close(); ro.Close() }()
	if err := chromedp.Do(ctx, chromedp.Navigate(ro.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#current-version"))); err != nil {
		t.Fatal(err)
	}
	buttons, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#upgrade-button, #upgrade").length`))
	if err != nil {
		t.Fatal(err)
	}
	if buttons != 0 {
		t.Errorf("a read-only service's console shows %d upgrade controls", buttons)
	}
	// Leave the page, closing its event stream, before the servers stop.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
}

// mustServer builds a server without serving it.
func mustServer(t *testing.T, db *testdb.DB, cfg server.Config, dir string) *server.Server {
	t.Helper()
	cfg.DB = db.DB
	cfg.MigratorOptions = []migrate.Option{migrate.WithDir(dir)}
	s, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
