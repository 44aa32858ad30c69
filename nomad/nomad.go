// Package nomad drives a Nomad cluster through its official API client
// (github.com/hashicorp/nomad/api): preflight checks, the CSI volume, config
// files onto it, deployments watched to the end, logs, stop/revert/restart,
// and node drains.
//
// Every call takes a context and never blocks past it; waits use Nomad's
// blocking queries. Nothing secret (tokens, variable contents) is logged or
// put in errors.
package nomad

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/nomad/api"
)

// Config says which cluster to talk to. Empty fields take Nomad's
// defaults (NOMAD_ADDR etc. are not read here; the CLI does that).
type Config struct {
	Address   string // http(s)://host:4646
	Token     string // ACL token; never logged
	Region    string
	Namespace string

	// RequestTimeout bounds each HTTP request (default 1m). Some api
	// calls take no context (parse, agent self, regions); this keeps them
	// from hanging on a stuck server. Blocking queries here wait at most
	// a few seconds, well inside it.
	RequestTimeout time.Duration
}

// Client is a connection to one cluster. It is safe for concurrent use.
type Client struct {
	api *api.Client
	cfg Config
	log *slog.Logger
}

// New returns a client for cfg. It does not contact the cluster.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ac := api.DefaultConfig()
	if cfg.Address != "" {
		ac.Address = cfg.Address
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = time.Minute
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = cfg.RequestTimeout
	hc.Transport.(*http.Transport).ForceAttemptHTTP2 = false // as the api client's default
	ac.HttpClient = hc
	ac.SecretID = cfg.Token
	ac.Region = cfg.Region
	ac.Namespace = cfg.Namespace
	c, err := api.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("nomad client: %w", err)
	}
	return &Client{api: c, cfg: cfg, log: logger.With("component", "nomad")}, nil
}

// API exposes the underlying api client, for callers that need a call
// this package does not wrap.
func (c *Client) API() *api.Client { return c.api }

func (c *Client) q(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func (c *Client) w(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// ACLError is a request the cluster refused for lack of permission (HTTP
// 403): the token is missing, unknown, or its policy lacks the capability.
type ACLError struct {
	Op  string
	Err error
}

func (e *ACLError) Error() string { return fmt.Sprintf("%s: permission denied: %v", e.Op, e.Err) }
func (e *ACLError) Unwrap() error { return e.Err }

// ConflictError is a job registration refused by check-and-set: the job
// changed since the caller read it (someone else deployed meanwhile).
// Nothing was overwritten.
type ConflictError struct {
	Job      string
	Expected uint64 // the JobModifyIndex the caller saw (0: none)
	Err      error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("register %s: job changed since it was read (expected modify index %d): %v", e.Job, e.Expected, e.Err)
}
func (e *ConflictError) Unwrap() error { return e.Err }

// statusCode extracts the HTTP status of an api client error (0 when it
// is not an HTTP answer).
func statusCode(err error) int {
	var ue api.UnexpectedResponseError
	if errors.As(err, &ue) {
		return ue.StatusCode()
	}
	var uep *api.UnexpectedResponseError
	if errors.As(err, &uep) {
		return uep.StatusCode()
	}
	// The fs/log calls return plain errors with the code in the text.
	if err != nil && strings.Contains(err.Error(), "Unexpected response code: 403") {
		return http.StatusForbidden
	}
	if err != nil && strings.Contains(err.Error(), "Unexpected response code: 404") {
		return http.StatusNotFound
	}
	return 0
}

// wrap turns a 403 into an ACLError and wraps everything else as "op: err".
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if statusCode(err) == http.StatusForbidden {
		return &ACLError{Op: op, Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// IsNotFound reports whether Nomad answered 404 (no such job, node,
// allocation, variable...).
func IsNotFound(err error) bool { return statusCode(err) == http.StatusNotFound }
