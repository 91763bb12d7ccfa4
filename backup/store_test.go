package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydb/ferry/internal/testdb"
)

func TestInsertCounter(t *testing.T) {
	dump := "-- MariaDB dump\n/*!40101 SET NAMES utf8mb4 */;\n" +
		"--\n-- Table structure for table `a``b`\n--\n\nCREATE TABLE `a``b` (x int);\n" +
		"--\n-- Table structure for table `empty`\n--\n" +
		"-- Temporary table structure for view `v`\n" +
		"INSERT INTO `a``b` VALUES (1,'x'),(2,'it\\'s (a) \"paren\" ),('),(3,NULL);\n" +
		"INSERT INTO `a``b` VALUES\n(4,'new\\nline'),\n(5,'back\\\\'),\n(6,0x28292C);\n" +
		"INSERT INTO `t` VALUES (1,\"dq ) ( \\\" \"),(2,'');\n" +
		"/*!40000 ALTER TABLE `t` ENABLE KEYS */;\n"
	want := "map[a`b:6 empty:0 t:2]"
	for chunk := 1; chunk <= 9; chunk++ {
		c := newInsertCounter()
		for i := 0; i < len(dump); i += chunk {
			c.Write([]byte(dump[i:min(i+chunk, len(dump))]))
		}
		if got := fmt.Sprint(c.counts); got != want || c.err() != nil {
			t.Errorf("chunks of %d: %s (%v), want %s", chunk, got, c.err(), want)
		}
	}
}

func TestNewID(t *testing.T) {
	at := time.Date(2026, 11, 21, 19, 30, 0, 0, time.UTC)
	a, b := NewID(at), NewID(at)
	if !ValidID(a) || !strings.HasPrefix(a, "20261121T193000Z-") || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
	if later := NewID(at.Add(time.Second)); later < a || later < b {
		t.Errorf("ids do not sort by time: %s < %s", later, a)
	}
	for _, bad := range []string{"", "../etc", "20261121T193000Z-ab12cd/x", "latest"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q)", bad)
		}
	}
}

func TestOpenStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := OpenStore(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if st, err := os.Stat(dir); err != nil || !st.IsDir() || s.String() != "file://"+dir {
		t.Fatalf("file:// store: %v, %s", err, s)
	}
	spaced := filepath.Join(t.TempDir(), "my backups")
	if s, err := OpenStore(ctx, "file://"+spaced); err != nil || s.String() != "file://"+spaced {
		t.Fatalf("directory with a space: %v %v", s, err)
	} else {
		s.Close()
	}
	t.Chdir(t.TempDir())
	s, err = OpenStore(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	cwd, _ := os.Getwd()
	if s.String() != "file://"+filepath.Join(cwd, DefaultStore) {
		t.Errorf("default store %s", s)
	}
	for loc, want := range map[string]string{
		"ftp://host/x":                  `unsupported scheme "ftp"`,
		"s3://key:SeCrEt@bucket/prefix": "credentials do not belong",
		"file://otherhost/var/backups":  "absolute path",
		"gs://bucket?token=SeCrEt&x=1":  "gs://bucket",
		"file://user:SeCrEt@/var/b":     "absolute path",
		"file://user:SeCrEt@host/var/b": "absolute path",
	} {
		_, err := OpenStore(ctx, loc)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "SeCrEt") {
			t.Errorf("OpenStore(%s): %v", loc, err)
		}
	}
}

// TestListAndPrune lists complete backups oldest first, skips incomplete
// ones, and prunes all but the newest.
func TestListAndPrune(t *testing.T) {
	ctx := tctx(t)
	db := testdb.New(t, "sqlite")
	seed(t, db.DB)
	store, dir := newStore(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 4; i++ {
		// All in one second: the order comes from the start times.
		when := at.Add(time.Duration(i) * time.Millisecond)
		m, err := Create(ctx, store, db.DB, CreateOptions{Options: Options{Now: func() time.Time { return when }}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// A backup whose manifest was never written.
	os.MkdirAll(filepath.Join(dir, NewID(at.Add(5*time.Hour))), 0o755)
	os.WriteFile(filepath.Join(dir, NewID(at.Add(5*time.Hour)), "dump.sql.gz"), []byte("partial"), 0o644)
	list, broken, err := store.List(ctx)
	if err != nil || len(list) != 4 || list[0].ID != ids[0] || list[3].ID != ids[3] || len(broken) != 0 {
		t.Fatalf("list: %v %v %v", list, broken, err)
	}
	if _, err := store.Prune(ctx, 0, false); err == nil {
		t.Error("prune --keep 0 must be refused")
	}
	would, err := store.Prune(ctx, 2, true)
	if err != nil || len(would.Deleted) != 2 {
		t.Fatalf("dry run: %v %v", would, err)
	}
	if l, _, _ := store.List(ctx); len(l) != 4 {
		t.Fatal("a dry run deleted something")
	}
	pruned, err := store.Prune(ctx, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	if gone := pruned.Deleted; len(gone) != 2 || gone[0].ID != ids[0] || gone[1].ID != ids[1] {
		t.Fatalf("prune: %v", gone)
	}
	list, _, _ = store.List(ctx)
	if len(list) != 2 || list[0].ID != ids[2] {
		t.Fatalf("after prune: %v", list)
	}
	// A cut-short manifest hides no other backup, and prune leaves it.
	brokenID := NewID(at.Add(6 * time.Hour))
	os.MkdirAll(filepath.Join(dir, brokenID), 0o755)
	if err := os.WriteFile(filepath.Join(dir, brokenID, manifestName), []byte(`{"format": 1, "id": "`), 0o644); err != nil {
		t.Fatal(err)
	}
	list, broken, err = store.List(ctx)
	if err != nil || len(list) != 2 || len(broken) != 1 || broken[0].ID != brokenID || !strings.Contains(broken[0].Err.Error(), brokenID) {
		t.Fatalf("list with a broken manifest: %v %v %v", list, broken, err)
	}
	pruned, err = store.Prune(ctx, 1, false)
	if err != nil || len(pruned.Deleted) != 1 || len(pruned.Broken) != 1 {
		t.Fatalf("prune with a broken manifest: %+v %v", pruned, err)
	}
	if _, err := os.Stat(filepath.Join(dir, brokenID, manifestName)); err != nil {
		t.Fatalf("prune deleted the broken backup: %v", err)
	}
	for _, id := range ids[:2] {
		if _, err := os.Stat(filepath.Join(dir, id)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("pruned backup %s left its folder: %v", id, err)
		}
	}
	if _, err := store.Manifest(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("manifest of a pruned backup: %v", err)
	}
	if _, err := store.Manifest(ctx, "../../etc/passwd"); err == nil || !strings.Contains(err.Error(), "not a backup id") {
		t.Errorf("bad id: %v", err)
	}
}
