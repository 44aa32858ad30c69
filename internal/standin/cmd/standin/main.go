// Command standin runs the Overseerr stand-in (package standin) for tests.
//
// Environment, as in Overseerr's image: CONFIG_DIRECTORY (default
// /app/config), PORT (default 5055); and WRITE_INTERVAL (a Go duration; off
// when empty) to write a row per interval.
//
// On SIGTERM or SIGINT it exits without closing the database, like
// Overseerr, so rows written since start remain only in the -wal file.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferry-migrate/ferry/internal/standin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Exit straight away: no deferred Close, no checkpoint.
	os.Exit(0)
}

func run(ctx context.Context) error {
	o := standin.Options{
		Addr:      ":" + env("PORT", "5055"),
		ConfigDir: env("CONFIG_DIRECTORY", "/app/config"),
		Logger:    slog.New(slog.NewTextHandler(os.Stdout, nil)),
	}
	if s := os.Getenv("WRITE_INTERVAL"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("WRITE_INTERVAL: %w", err)
		}
		o.WriteInterval = d
	}
	return standin.Run(ctx, o)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
