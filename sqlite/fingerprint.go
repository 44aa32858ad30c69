// Package sqlite proves that two SQLite databases hold the same data.
//
// A Fingerprint is read through SQLite, so rows that sit only in the -wal
// file count: a database whose main file is 4096 bytes and whose every row
// is in the WAL (Overseerr after docker stop) fingerprints the same as its
// checkpointed copy. Fingerprinting never writes, checkpoints or creates a
// file beside the source.
package sqlite

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Fingerprint summarises a database's content. Two databases with equal
// fingerprints hold the same schema and the same rows, regardless of page
// layout, row order, free pages or whether rows are in the WAL.
//
// Tables whose names start with "sqlite_" or "_litestream_" are bookkeeping
// and are left out, so a source and its litestream restore compare equal.
type Fingerprint struct {
	// Integrity is the result of PRAGMA integrity_check: "ok" when sound.
	Integrity string `json:"integrity"`
	// SchemaHash is the sha256 of the sorted CREATE statements of every
	// table, index, view and trigger.
	SchemaHash string `json:"schema_hash"`
	// Tables is sorted by name.
	Tables []Table `json:"tables"`
}

// Table is the content of one table.
type Table struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
	// Hash is order independent: the lane-wise sum (mod 2^64) of the
	// sha256 of every row's canonical encoding, so equal multisets of rows
	// hash equal and a duplicated row does not cancel out as with XOR.
	Hash string `json:"hash"`
}

// Rows is the number of rows in all tables.
func (f *Fingerprint) Rows() int64 {
	var n int64
	for _, t := range f.Tables {
		n += t.Rows
	}
	return n
}

// OK reports whether the integrity check passed.
func (f *Fingerprint) OK() bool { return f.Integrity == "ok" }

// Table returns the named table, or false.
func (f *Fingerprint) Table(name string) (Table, bool) {
	i, ok := slices.BinarySearchFunc(f.Tables, name, func(t Table, n string) int { return cmp.Compare(t.Name, n) })
	if !ok {
		return Table{}, false
	}
	return f.Tables[i], true
}

// String is a human summary: integrity, schema hash and one line per table.
func (f *Fingerprint) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "integrity: %s\nschema:    %s\n", f.Integrity, short(f.SchemaHash))
	for _, t := range f.Tables {
		fmt.Fprintf(&b, "table %-24s rows=%-10d hash=%s\n", t.Name, t.Rows, short(t.Hash))
	}
	return b.String()
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// Difference is one way two fingerprints differ.
type Difference struct {
	// What is "integrity", "schema", "missing", "rows" or "content".
	What  string `json:"what"`
	Table string `json:"table,omitempty"`
	A     string `json:"a"`
	B     string `json:"b"`
}

func (d Difference) String() string {
	if d.Table == "" {
		return fmt.Sprintf("%s differs: %s vs %s", d.What, d.A, d.B)
	}
	return fmt.Sprintf("table %s: %s differs: %s vs %s", d.Table, d.What, d.A, d.B)
}

// Diff returns every difference between a and b: integrity, schema, and
// per table presence, row count and content. Nil means equal.
func Diff(a, b *Fingerprint) []Difference {
	var d []Difference
	if a.Integrity != b.Integrity {
		d = append(d, Difference{What: "integrity", A: a.Integrity, B: b.Integrity})
	}
	if a.SchemaHash != b.SchemaHash {
		d = append(d, Difference{What: "schema", A: short(a.SchemaHash), B: short(b.SchemaHash)})
	}
	names := make([]string, 0, len(a.Tables)+len(b.Tables))
	for _, t := range a.Tables {
		names = append(names, t.Name)
	}
	for _, t := range b.Tables {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return append(d, diffTables(a, b, slices.Compact(names))...)
}

// DiffTables compares only the named tables (the users' data) and the
// integrity result, ignoring the schema and every other table. A table
// missing on either side is a difference.
func DiffTables(a, b *Fingerprint, tables []string) []Difference {
	var d []Difference
	if a.Integrity != b.Integrity {
		d = append(d, Difference{What: "integrity", A: a.Integrity, B: b.Integrity})
	}
	return append(d, diffTables(a, b, tables)...)
}

func diffTables(a, b *Fingerprint, names []string) []Difference {
	var d []Difference
	for _, n := range names {
		ta, okA := a.Table(n)
		tb, okB := b.Table(n)
		switch {
		case !okA || !okB:
			d = append(d, Difference{What: "missing", Table: n, A: present(okA), B: present(okB)})
		case ta.Rows != tb.Rows:
			d = append(d, Difference{What: "rows", Table: n, A: fmt.Sprint(ta.Rows), B: fmt.Sprint(tb.Rows)})
		case ta.Hash != tb.Hash:
			d = append(d, Difference{What: "content", Table: n, A: short(ta.Hash), B: short(tb.Hash)})
		}
	}
	return d
}

func present(ok bool) string {
	if ok {
		return "present"
	}
	return "absent"
}

// ErrChanged means the source database was written while it was being
// fingerprinted; the result would not describe one state of it.
var ErrChanged = errors.New("database changed while being read")

// FingerprintFile fingerprints the database at path, including its -wal.
//
// The source is never modified: when a non-empty -wal exists, the database
// and its WAL are copied to a private temporary directory and the copy is
// read (opening the source itself would create a -shm and, on close of the
// last connection, checkpoint); otherwise the file is opened immutable.
// The database must not be written meanwhile (stop the app first); if it
// is, ErrChanged is returned.
func FingerprintFile(ctx context.Context, path string) (*Fingerprint, error) {
	before, err := statDB(path)
	if err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	}
	dsn := "file:" + uriPath(path) + "?mode=ro&immutable=1"
	if before.walSize > 0 {
		dir, err := os.MkdirTemp("", "ferry-fingerprint-")
		if err != nil {
			return nil, fmt.Errorf("fingerprint: %w", err)
		}
		defer os.RemoveAll(dir)
		cp := filepath.Join(dir, "db")
		if err := copyFile(path, cp); err != nil {
			return nil, fmt.Errorf("fingerprint: %w", err)
		}
		if err := copyFile(path+"-wal", cp+"-wal"); err != nil {
			return nil, fmt.Errorf("fingerprint: %w", err)
		}
		after, err := statDB(path)
		if err != nil {
			return nil, fmt.Errorf("fingerprint: %w", err)
		}
		if after != before {
			return nil, fmt.Errorf("fingerprint %s: %w", path, ErrChanged)
		}
		dsn = "file:" + uriPath(cp)
	}
	fp, err := fingerprintDSN(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("fingerprint %s: %w", path, err)
	}
	if after, err := statDB(path); err != nil {
		return nil, fmt.Errorf("fingerprint: %w", err)
	} else if after != before {
		return nil, fmt.Errorf("fingerprint %s: %w", path, ErrChanged)
	}
	return fp, nil
}

type dbStat struct {
	size, walSize int64
	mtime, walMod time.Time
}

func statDB(path string) (dbStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return dbStat{}, err
	}
	s := dbStat{size: fi.Size(), mtime: fi.ModTime()}
	if wi, err := os.Stat(path + "-wal"); err == nil {
		s.walSize, s.walMod = wi.Size(), wi.ModTime()
	} else if !errors.Is(err, os.ErrNotExist) {
		return dbStat{}, err
	}
	return s, nil
}

func uriPath(p string) string {
	abs, err := filepath.Abs(p)
	if err == nil {
		p = abs
	}
	return (&url.URL{Path: p}).EscapedPath()
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range on Linux
		out.Close()
		return err
	}
	return out.Close()
}

// fingerprintDSN runs the integrity check and the table scans on separate
// connections at the same time: each is CPU bound on one core.
func fingerprintDSN(ctx context.Context, dsn string) (*Fingerprint, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(4)

	fp := &Fingerprint{}
	var names []string
	if fp.SchemaHash, names, err = schema(ctx, db); err != nil {
		return nil, err
	}
	fp.Tables = make([]Table, len(names))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		fp.Integrity, err = integrity(gctx, db)
		return err
	})
	g.Go(func() error {
		for i, n := range names {
			t, err := hashTable(gctx, db, n)
			if err != nil {
				return err
			}
			fp.Tables[i] = t
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return fp, nil
}

func internalTable(name string) bool {
	n := strings.ToLower(name)
	return strings.HasPrefix(n, "sqlite_") || strings.HasPrefix(n, "_litestream_")
}

// schema hashes the CREATE statements and lists the user tables, sorted.
func schema(ctx context.Context, db *sql.DB) (string, []string, error) {
	rows, err := db.QueryContext(ctx, `SELECT type, name, COALESCE(sql, '') FROM sqlite_schema`)
	if err != nil {
		return "", nil, fmt.Errorf("read schema: %w", err)
	}
	defer rows.Close()
	var stmts, tables []string
	for rows.Next() {
		var typ, name, stmt string
		if err := rows.Scan(&typ, &name, &stmt); err != nil {
			return "", nil, fmt.Errorf("read schema: %w", err)
		}
		if internalTable(name) {
			continue
		}
		stmts = append(stmts, typ+"\x00"+name+"\x00"+stmt)
		if typ == "table" && !strings.HasPrefix(strings.ToUpper(stmt), "CREATE VIRTUAL") {
			tables = append(tables, name)
		}
	}
	if err := rows.Err(); err != nil {
		return "", nil, fmt.Errorf("read schema: %w", err)
	}
	slices.Sort(stmts)
	slices.Sort(tables)
	h := sha256.New()
	for _, s := range stmts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), tables, nil
}

func integrity(ctx context.Context, db *sql.DB) (string, error) {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return "", fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			return "", fmt.Errorf("integrity check: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("integrity check: %w", err)
	}
	return strings.Join(msgs, "; "), nil
}

// Value type tags of the canonical row encoding.
const (
	tagNull  = 0
	tagInt   = 1
	tagFloat = 2
	tagText  = 3
	tagBlob  = 4
)

// hashTable counts the rows of a table and sums their hashes. A row is
// encoded column by column as a type tag followed by the value: integers
// and floats as 8 big-endian bytes, text and blobs length-prefixed. The
// rowid is not part of it, so a table rebuilt by VACUUM hashes the same.
func hashTable(ctx context.Context, db *sql.DB, name string) (Table, error) {
	rows, err := db.QueryContext(ctx, `SELECT * FROM "`+strings.ReplaceAll(name, `"`, `""`)+`"`)
	if err != nil {
		return Table{}, fmt.Errorf("read table %s: %w", name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Table{}, fmt.Errorf("read table %s: %w", name, err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var (
		sum [4]uint64
		n   int64
		buf []byte
	)
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return Table{}, fmt.Errorf("read table %s: %w", name, err)
		}
		buf = buf[:0]
		for _, v := range vals {
			buf = appendValue(buf, v)
		}
		h := sha256.Sum256(buf)
		for i := range sum {
			sum[i] += binary.BigEndian.Uint64(h[i*8:])
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return Table{}, fmt.Errorf("read table %s: %w", name, err)
	}
	var out [32]byte
	for i, s := range sum {
		binary.BigEndian.PutUint64(out[i*8:], s)
	}
	return Table{Name: name, Rows: n, Hash: hex.EncodeToString(out[:])}, nil
}

func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, tagNull)
	case int64:
		return binary.BigEndian.AppendUint64(append(b, tagInt), uint64(v))
	case float64:
		return binary.BigEndian.AppendUint64(append(b, tagFloat), math.Float64bits(v))
	case string:
		b = binary.AppendUvarint(append(b, tagText), uint64(len(v)))
		return append(b, v...)
	case []byte:
		b = binary.AppendUvarint(append(b, tagBlob), uint64(len(v)))
		return append(b, v...)
	case bool: // not produced by SQLite's storage classes; kept total
		if v {
			return binary.BigEndian.AppendUint64(append(b, tagInt), 1)
		}
		return binary.BigEndian.AppendUint64(append(b, tagInt), 0)
	case time.Time: // the driver parses DATETIME columns; encode as text
		s := v.Format(time.RFC3339Nano)
		b = binary.AppendUvarint(append(b, tagText), uint64(len(s)))
		return append(b, s...)
	default:
		s := fmt.Sprint(v)
		b = binary.AppendUvarint(append(b, tagText), uint64(len(s)))
		return append(b, s...)
	}
}
