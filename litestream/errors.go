package litestream

import (
	"errors"
	"fmt"
	"time"

	"github.com/aws/smithy-go"
)

// Permanent errors: retrying cannot help, so operations stop at once.
var (
	// ErrAccessDenied: the store refused the credentials (wrong access
	// key or secret, or no permission on the bucket).
	ErrAccessDenied = errors.New("access denied by object store")
	// ErrNoSuchBucket: the bucket does not exist.
	ErrNoSuchBucket = errors.New("bucket does not exist")
	// ErrNoReplica: the path holds no replica (nothing to restore). This is
	// not "unreachable": callers may treat it as a first deploy.
	ErrNoReplica = errors.New("no replica at path")
	// ErrNotCovered: after seeding, the replica does not hold the source's
	// latest transaction. A seed never reports success in this case.
	ErrNotCovered = errors.New("replica does not cover the source")
	// ErrLeaseLost: another writer took the lease while we held it.
	ErrLeaseLost = errors.New("replica lease lost to another writer")
)

// StoreError is an error answered by the object store, with its S3 code.
// It unwraps to ErrAccessDenied or ErrNoSuchBucket when it is one.
type StoreError struct {
	Op   string
	Code string // S3 error code, e.g. SignatureDoesNotMatch
	Err  error
}

func (e *StoreError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Op, e.Code, e.Err) }

func (e *StoreError) Unwrap() []error {
	switch e.Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden":
		return []error{ErrAccessDenied, e.Err}
	case "NoSuchBucket":
		return []error{ErrNoSuchBucket, e.Err}
	}
	return []error{e.Err}
}

// classify wraps an SDK error as a StoreError when the store answered.
// The SDK's error text holds no secrets (it names the access key id at
// most), so it is kept for diagnosis.
func classify(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return &StoreError{Op: op, Code: ae.ErrorCode(), Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// LeaseHeldError: another live writer holds the replica's lease.
type LeaseHeldError struct {
	Lease Lease
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("replica is held by %s (host %s, pid %d) until %s",
		e.Lease.Holder, e.Lease.Hostname, e.Lease.PID, e.Lease.Expires.Format(time.RFC3339))
}

// ReplicaExistsError: seeding was refused because the path already holds
// a replica (use SeedOptions.Force to replace it).
type ReplicaExistsError struct {
	Version int       // 5 for LTX, 3 for generations
	TXID    uint64    // latest transaction (v0.5)
	Latest  time.Time // time of the latest file
	Size    int64     // bytes stored
}

func (e *ReplicaExistsError) Error() string {
	return fmt.Sprintf("path already holds a v0.%d replica (latest %s, txid %d, %d bytes)",
		e.Version, e.Latest.Format(time.RFC3339), e.TXID, e.Size)
}
