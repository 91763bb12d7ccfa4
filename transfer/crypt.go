package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/ferrydb/ferry/store"
)

// Encryption modes of an export.
const (
	// EncryptAll encrypts every chunk.
	EncryptAll = "all"
	// EncryptSensitive encrypts the chunks of the tables named sensitive
	// (a table, or a table.column: its table's chunks).
	EncryptSensitive = "sensitive"
)

// ErrKey is wrapped by the error for an encrypted export that the given
// identities (or passphrase) cannot open, or that no identity was given
// for.
var ErrKey = errors.New("cannot decrypt the export")

// Encryption says how an export is encrypted. The chunks of the tables in
// Tables are encrypted with age to a key made for this export alone; that
// key is stored, itself encrypted with age to the operator's recipients
// (or passphrase), in the object Key. A passphrase costs its scrypt work
// once per export, not once per chunk.
type Encryption struct {
	Mode   string   `json:"mode"`
	Tables []string `json:"tables"`
	// Key is the object holding the export's key, encrypted; KeySHA256
	// its checksum.
	Key       string `json:"key"`
	KeySHA256 string `json:"key_sha256"`
}

const keyName = "key.age"

// encrypts reports whether table's chunks are encrypted.
func (e *Encryption) encrypts(table string) bool {
	return e != nil && slices.Contains(e.Tables, table)
}

// encryptedTables returns the tables mode and sensitive select; a
// sensitive table among leftOut (not exported) selects nothing.
func encryptedTables(mode string, sensitive []string, tables []TableExport, leftOut []string) ([]string, error) {
	names := map[string]bool{}
	for _, t := range tables {
		names[t.Name] = true
	}
	var out []string
	switch mode {
	case EncryptAll:
		for _, t := range tables {
			out = append(out, t.Name)
		}
	case EncryptSensitive:
		if len(sensitive) == 0 {
			return nil, errors.New("--encrypt sensitive needs the sensitive tables or table.columns listed (--sensitive, FERRY_EXPORT_SENSITIVE)")
		}
		for _, s := range sensitive {
			table, col, hasCol := strings.Cut(s, ".")
			if !names[table] && slices.Contains(leftOut, table) {
				continue // not exported (--tables, --exclude): nothing of it to encrypt
			}
			if !names[table] {
				return nil, fmt.Errorf("%w: sensitive %q: the export has no table %q", ErrSelection, s, table)
			}
			if hasCol {
				found := false
				for _, t := range tables {
					if t.Name == table && t.column(col) != nil {
						found = true
					}
				}
				if !found {
					return nil, fmt.Errorf("%w: sensitive %q: table %s has no column %q", ErrSelection, s, table, col)
				}
			}
			if !slices.Contains(out, table) {
				out = append(out, table)
			}
		}
		out = append(out, referencing(sensitive, tables, out)...)
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: every table --sensitive names is left out of the export (--tables, --exclude): nothing would be encrypted; export without --encrypt, or include them", ErrSelection)
		}
	default:
		return nil, fmt.Errorf("--encrypt %q: use all or sensitive", mode)
	}
	slices.Sort(out)
	return out, nil
}

// referencing returns the tables, not in encrypted, that hold the values
// of a sensitive column (table.column) through a foreign key, either way:
// sessions.email referencing accounts.email holds some of its emails, and
// accounts.email every one sessions.email can hold. The columns it finds
// are followed the same way.
func referencing(sensitive []string, tables []TableExport, encrypted []string) []string {
	secret := map[string]bool{}
	for _, s := range sensitive {
		if strings.Contains(s, ".") {
			secret[s] = true
		}
	}
	var more []string
	mark := func(table, col string) bool {
		if secret[table+"."+col] {
			return false
		}
		secret[table+"."+col] = true
		if !slices.Contains(encrypted, table) && !slices.Contains(more, table) {
			more = append(more, table)
		}
		return true
	}
	for grew := true; grew; {
		grew = false
		for _, t := range tables {
			for _, fk := range t.ForeignKeys {
				for i, rc := range fk.RefColumns {
					if i >= len(fk.Columns) {
						break
					}
					child, parent := secret[t.Name+"."+fk.Columns[i]], secret[fk.RefTable+"."+rc]
					if parent && !child {
						grew = mark(t.Name, fk.Columns[i]) || grew
					} else if child && !parent {
						grew = mark(fk.RefTable, rc) || grew
					}
				}
			}
		}
	}
	return more
}

// newExportKey makes the export's own key and stores it, encrypted to
// recipients, as id/key.age.
func (s *Store) newExportKey(ctx context.Context, id string, recipients []age.Recipient) (*age.X25519Identity, string, error) {
	if len(recipients) == 0 {
		return nil, "", errors.New("encryption needs a recipient (--recipients-file, FERRY_EXPORT_RECIPIENTS) or a passphrase (--passphrase-file, FERRY_EXPORT_PASSPHRASE)")
	}
	key, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, recipients...)
	if err != nil {
		return nil, "", fmt.Errorf("encrypt the export key: %w", err)
	}
	io.WriteString(w, key.String())
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	if err := s.s.WriteAll(ctx, id+"/"+keyName, buf.Bytes(), "application/octet-stream"); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return key, hex.EncodeToString(sum[:]), nil
}

// exportKey opens the export's key with the operator's identities.
func (s *Store) exportKey(ctx context.Context, m *Manifest, identities []age.Identity) (age.Identity, error) {
	if m.Encryption == nil {
		return nil, nil
	}
	return s.openKey(ctx, m.ID, m.Encryption, identities)
}

// openKey opens the key of export id, as enc names it, with the
// operator's identities.
func (s *Store) openKey(ctx context.Context, id string, enc *Encryption, identities []age.Identity) (age.Identity, error) {
	data, err := s.readKey(ctx, id, enc)
	if err != nil {
		return nil, err
	}
	// age's header says what opens it: a passphrase (scrypt) or the
	// secret key of a recipient (X25519).
	need := "the identity file of one of its recipients (the secret key, AGE-SECRET-KEY-1...) with --identity or FERRY_IMPORT_IDENTITY"
	if bytes.Contains(data, []byte("\n-> scrypt ")) {
		need = "the passphrase it was exported with, with --passphrase-file or FERRY_IMPORT_PASSPHRASE"
	}
	if len(identities) == 0 {
		return nil, fmt.Errorf("%w %s: it is encrypted (%s); give %s", ErrKey, id, enc.Mode, need)
	}
	r, err := age.Decrypt(bytes.NewReader(data), identities...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("%w %s: the identity or passphrase given is not one it was encrypted for: give %s", ErrKey, id, need)
		}
		return nil, fmt.Errorf("%w %s: %v", ErrKey, id, err)
	}
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v", ErrKey, id, err)
	}
	key, err := age.ParseX25519Identity(strings.TrimSpace(string(text)))
	if err != nil {
		return nil, fmt.Errorf("%w: the key of export %s: %v", ErrCorrupt, id, err)
	}
	return key, nil
}

// errKeyLost is wrapped by readKey's error for an export whose key file
// is gone.
var errKeyLost = errors.New("lost its key")

// readKey reads the key of export id, still encrypted, and checks it
// against enc's sha256: without it, no identity can open the export.
func (s *Store) readKey(ctx context.Context, id string, enc *Encryption) ([]byte, error) {
	data, err := s.s.ReadAll(ctx, id+"/"+enc.Key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, fmt.Errorf("%w: export %s has %w (%s/%s is gone): no identity or passphrase can open it without that file; restore it from a copy of the store, or export again", ErrCorrupt, id, errKeyLost, id, enc.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: the key of export %s: %v", ErrCorrupt, id, err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != enc.KeySHA256 {
		return nil, fmt.Errorf("%w: %s/%s has sha256 %x, the manifest says %s", ErrCorrupt, id, enc.Key, sum, enc.KeySHA256)
	}
	return data, nil
}

// ParseRecipients reads age recipients (age1..., one per line, # comments)
// as an age recipients file holds them.
func ParseRecipients(r io.Reader) ([]age.Recipient, error) {
	// Lines of only spaces are blank lines, which age does not take.
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			lines[i] = ""
		}
	}
	rs, err := age.ParseRecipients(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		return nil, fmt.Errorf("age recipients: %w (a recipients file holds public keys, age1...; the secret key, AGE-SECRET-KEY-1..., stays with whoever imports: age-keygen -y prints its public key)", err)
	}
	return rs, nil
}

// ParseIdentities reads age identities (AGE-SECRET-KEY-1..., as age-keygen
// writes them).
func ParseIdentities(r io.Reader) ([]age.Identity, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		if bytes.Contains(data, []byte("age1")) && !bytes.Contains(data, []byte("AGE-SECRET-KEY-")) {
			return nil, fmt.Errorf("age identities: %w (this holds a public key, age1..., as a recipients file does: an identity file holds the secret key, AGE-SECRET-KEY-1..., as age-keygen wrote it)", err)
		}
		return nil, fmt.Errorf("age identities: %w", err)
	}
	return ids, nil
}

// PassphraseRecipient and PassphraseIdentity encrypt and decrypt an
// export's key with a passphrase (age's scrypt).
func PassphraseRecipient(pass string) ([]age.Recipient, error) {
	r, err := age.NewScryptRecipient(pass)
	if err != nil {
		return nil, err
	}
	return []age.Recipient{r}, nil
}

// maxScryptWorkFactor is the largest scrypt work factor (log2) a
// passphrase-encrypted export's key may ask for.
const maxScryptWorkFactor = 20

// PassphraseIdentity is the identity of a passphrase.
func PassphraseIdentity(pass string) ([]age.Identity, error) {
	id, err := age.NewScryptIdentity(pass)
	if err != nil {
		return nil, err
	}
	// ferry writes age's default work factor, 2^18 (256 MiB, about a
	// second); a key asking for more than 2^20 (1 GiB) was not written
	// by it, and would cost gigabytes and minutes before any check.
	id.SetMaxWorkFactor(maxScryptWorkFactor)
	return []age.Identity{id}, nil
}
