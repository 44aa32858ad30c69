package litestream

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// LeaseFile is the lease object's name inside the replica path. litestream
// ignores it (it is not an LTX file nor under generations/).
const LeaseFile = "ferry-lease.json"

// Lease is the single-writer lease of a replica path. Two processes
// replicating into one path corrupt the replica; Seed and Replicate hold
// the lease while they write.
type Lease struct {
	Holder   string    `json:"holder"`
	Hostname string    `json:"hostname"`
	PID      int       `json:"pid"`
	Token    string    `json:"token"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Live reports whether the lease has not expired at now.
func (l Lease) Live(now time.Time) bool { return now.Before(l.Expires) }

var errPrecondition = errors.New("precondition failed")

// leaseStore is where the lease object lives: the S3 path or a directory.
type leaseStore interface {
	// read returns os.ErrNotExist when there is no lease.
	read(ctx context.Context) (data []byte, etag string, err error)
	// write creates (etag "") or replaces (etag of what was read) the lease,
	// conditionally where the store supports it: errPrecondition when the
	// object changed meanwhile.
	write(ctx context.Context, data []byte, etag string) error
	remove(ctx context.Context) error
}

// leaser acquires, renews and releases the lease.
//
// Acquisition uses conditional writes (If-None-Match / If-Match), which
// AWS, MinIO, versitygw and s3local enforce. For stores that ignore them,
// it also reads the lease back after writing and again after settle: of
// writers that all saw the lease free, the last to write wins and every
// other one sees its token overwritten and backs off.
type leaser struct {
	store  leaseStore
	ttl    time.Duration
	settle time.Duration
	mine   Lease
	etag   string
}

func newLeaser(store leaseStore, holder string, ttl, settle time.Duration) *leaser {
	host, _ := os.Hostname()
	tok := make([]byte, 16)
	rand.Read(tok)
	return &leaser{store: store, ttl: ttl, settle: settle, mine: Lease{
		Holder: holder, Hostname: host, PID: os.Getpid(), Token: hex.EncodeToString(tok),
	}}
}

func (l *leaser) current(ctx context.Context) (*Lease, string, error) {
	data, etag, err := l.store.read(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	var cur Lease
	if err := json.Unmarshal(data, &cur); err != nil {
		// An unreadable lease protects nothing; treat it as expired.
		return &Lease{}, etag, nil
	}
	return &cur, etag, nil
}

// acquire takes the lease or returns *LeaseHeldError naming the holder.
func (l *leaser) acquire(ctx context.Context) error {
	cur, etag, err := l.current(ctx)
	if err != nil {
		return fmt.Errorf("read lease: %w", err)
	}
	if cur != nil && cur.Token != l.mine.Token && cur.Live(time.Now()) && !l.holderGone(cur) {
		return &LeaseHeldError{Lease: *cur}
	}
	now := time.Now().UTC()
	l.mine.Acquired, l.mine.Expires = now, now.Add(l.ttl)
	data, _ := json.Marshal(l.mine)
	if err := l.store.write(ctx, data, etag); err != nil {
		if errors.Is(err, errPrecondition) {
			return l.heldBy(ctx)
		}
		return fmt.Errorf("write lease: %w", err)
	}
	for _, wait := range []time.Duration{0, l.settle} {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		cur, etag, err := l.current(ctx)
		if err != nil {
			return fmt.Errorf("read lease back: %w", err)
		}
		if cur == nil || cur.Token != l.mine.Token {
			return l.heldBy(ctx)
		}
		l.etag = etag
	}
	return nil
}

// holderGone reports whether cur was taken by a process of this host that
// no longer exists (a ferry killed mid-seed): its lease protects nothing,
// and waiting for it to expire would only delay the resumed migration.
// A reused PID looks alive, which errs on the safe side.
func (l *leaser) holderGone(cur *Lease) bool {
	if cur.Hostname != l.mine.Hostname || cur.PID <= 0 || cur.PID == l.mine.PID {
		return false
	}
	return errors.Is(syscall.Kill(cur.PID, 0), syscall.ESRCH)
}

func (l *leaser) heldBy(ctx context.Context) error {
	cur, _, err := l.current(ctx)
	if err != nil {
		return fmt.Errorf("read lease: %w", err)
	}
	if cur == nil {
		cur = &Lease{Holder: "unknown (lease vanished during acquisition)"}
	}
	return &LeaseHeldError{Lease: *cur}
}

// renew extends the lease; ErrLeaseLost if someone else holds it now.
func (l *leaser) renew(ctx context.Context) error {
	cur, etag, err := l.current(ctx)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if cur == nil || cur.Token != l.mine.Token {
		return ErrLeaseLost
	}
	l.mine.Expires = time.Now().UTC().Add(l.ttl)
	data, _ := json.Marshal(l.mine)
	if err := l.store.write(ctx, data, etag); errors.Is(err, errPrecondition) {
		return ErrLeaseLost
	} else if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	l.etag = etag
	return nil
}

// release deletes the lease if it is still ours.
func (l *leaser) release(ctx context.Context) error {
	cur, _, err := l.current(ctx)
	if err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	if cur == nil || cur.Token != l.mine.Token {
		return nil
	}
	if err := l.store.remove(ctx); err != nil {
		return fmt.Errorf("release lease: %w", err)
	}
	return nil
}

// s3LeaseStore keeps the lease at <path>/ferry-lease.json.
type s3LeaseStore struct{ c *s3Client }

func (s s3LeaseStore) key() string { return s.c.key(LeaseFile) }

func (s s3LeaseStore) read(ctx context.Context) ([]byte, string, error) {
	out, err := s.c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.c.bucket), Key: aws.String(s.key())})
	if err != nil {
		if isNotFound(err) {
			return nil, "", os.ErrNotExist
		}
		return nil, "", classify("get lease", err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	return b, aws.ToString(out.ETag), err
}

func (s s3LeaseStore) write(ctx context.Context, data []byte, etag string) error {
	in := &s3.PutObjectInput{Bucket: aws.String(s.c.bucket), Key: aws.String(s.key()), Body: bytes.NewReader(data), ContentType: aws.String("application/json")}
	if etag == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(etag)
	}
	_, err := s.c.s3.PutObject(ctx, in)
	if isCode(err, "PreconditionFailed", "ConditionalRequestConflict") {
		return errPrecondition
	}
	if isCode(err, "NotImplemented") { // no conditional writes: read-back decides
		in.IfNoneMatch, in.IfMatch = nil, nil
		in.Body = bytes.NewReader(data)
		_, err = s.c.s3.PutObject(ctx, in)
	}
	if err != nil {
		return classify("put lease", err)
	}
	return nil
}

func (s s3LeaseStore) remove(ctx context.Context) error { return s.c.delete(ctx, s.key()) }

// dirLeaseStore keeps the lease in a local replica directory. Creation is
// atomic (link fails if the file exists); replacement is rename.
type dirLeaseStore struct{ dir string }

func (d dirLeaseStore) path() string { return filepath.Join(d.dir, LeaseFile) }

func (d dirLeaseStore) read(ctx context.Context) ([]byte, string, error) {
	b, err := os.ReadFile(d.path())
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:]), nil
}

func (d dirLeaseStore) write(ctx context.Context, data []byte, etag string) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, ".lease-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if etag == "" {
		if err := os.Link(tmp.Name(), d.path()); errors.Is(err, os.ErrExist) {
			return errPrecondition
		} else if err != nil {
			return err
		}
		return nil
	}
	if _, cur, err := d.read(ctx); err != nil || cur != etag {
		return errPrecondition
	}
	return os.Rename(tmp.Name(), d.path())
}

func (d dirLeaseStore) remove(ctx context.Context) error {
	if err := os.Remove(d.path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
