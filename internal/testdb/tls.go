package testdb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	driver "github.com/go-sql-driver/mysql"
)

// TLSFiles are the PEM files of a throwaway certificate authority, a
// server certificate for "localhost" (no IP address), and a client
// certificate, all signed by that authority.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
}

// NewTLSFiles writes a fresh CA and certificates into a temporary directory.
func NewTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return der, kder
	}
	sc, sk := leaf(2, "localhost", x509.ExtKeyUsageServerAuth, []string{"localhost"})
	cc, ck := leaf(3, "ferry-client", x509.ExtKeyUsageClientAuth, nil)
	return TLSFiles{
		CA:         write("ca.pem", "CERTIFICATE", caDER),
		ServerCert: write("server-cert.pem", "CERTIFICATE", sc),
		ServerKey:  write("server-key.pem", "EC PRIVATE KEY", sk),
		ClientCert: write("client-cert.pem", "CERTIFICATE", cc),
		ClientKey:  write("client-key.pem", "EC PRIVATE KEY", ck),
	}
}

// MariaDBTLS is a private MariaDB server with TLS, for one test.
type MariaDBTLS struct {
	Port  int
	Files TLSFiles
}

// StartMariaDBTLS starts a throwaway MariaDB server with TLS on a free
// loopback port (root without password), using the mariadb-install-db and
// mariadbd of the machine's MariaDB, and stops it when t ends. It is a MySQL
// test: it skips or fails like New when FERRY_TEST_MYSQL_URL is unset.
func StartMariaDBTLS(t testing.TB) *MariaDBTLS {
	t.Helper()
	ServerURL(t, "mysql")
	install, err1 := exec.LookPath("mariadb-install-db")
	mariadbd, err2 := findMariadbd()
	if err1 != nil || err2 != nil {
		t.Fatalf("a private TLS MariaDB needs mariadb-install-db and mariadbd (package mariadb-server): %v %v", err1, err2)
	}
	dir := t.TempDir()
	files := NewTLSFiles(t)
	out, err := exec.Command(install, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, mariadbd, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user=root",
		fmt.Sprintf("--port=%d", port), "--bind-address=127.0.0.1", "--socket="+filepath.Join(dir, "sock"),
		"--ssl-cert="+files.ServerCert, "--ssl-key="+files.ServerKey, "--ssl-ca="+files.CA,
		"--skip-log-bin", "--innodb-buffer-pool-size=16M", "--log-error="+filepath.Join(dir, "error.log"))
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	cfg := driver.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "tcp", fmt.Sprintf("127.0.0.1:%d", port)
	conn, _ := driver.NewConnector(cfg)
	db := sql.OpenDB(conn)
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(pctx)
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || cmd.ProcessState != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("private MariaDB did not start: %v\n%s", err, log)
		}
	}
	return &MariaDBTLS{Port: port, Files: files}
}

func findMariadbd() (string, error) {
	if p, err := exec.LookPath("mariadbd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mariadbd", "/usr/sbin/mysqld"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mariadbd not found")
}
