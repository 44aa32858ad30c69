package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// stepUI prints the live list of steps: one line as each starts and
// finishes, and byte progress for the long ones (backup, seed, restore),
// at most a few times a second.
type stepUI struct {
	w       io.Writer
	mu      sync.Mutex
	started map[string]time.Time
	last    map[string]time.Time
}

func newStepUI(w io.Writer) *stepUI {
	return &stepUI{w: w, started: map[string]time.Time{}, last: map[string]time.Time{}}
}

func (u *stepUI) StepStarted(name string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.started[name] = time.Now()
	fmt.Fprintf(u.w, "  ...  %s\n", name)
}

func (u *stepUI) StepFinished(name, state string, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	took := time.Since(u.started[name]).Round(time.Millisecond)
	mark := map[string]string{"done": " ok ", "failed": "FAIL", "undone": "undo"}[state]
	if mark == "" {
		mark = state
	}
	line := fmt.Sprintf("  %s %s (%s)", mark, name, took)
	if err != nil {
		line += ": " + firstLine(err.Error())
	}
	fmt.Fprintln(u.w, line)
}

// Progress draws a bar for a step that moves bytes.
func (u *stepUI) Progress(step string, done, total int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if now.Sub(u.last[step]) < 250*time.Millisecond && done != total {
		return
	}
	u.last[step] = now
	if total <= 0 {
		fmt.Fprintf(u.w, "       %s %s\n", step, byteSize(done))
		return
	}
	const width = 30
	n := int(float64(width) * float64(done) / float64(total))
	n = min(max(n, 0), width)
	fmt.Fprintf(u.w, "       %s [%s%s] %s / %s\n", step, strings.Repeat("#", n), strings.Repeat(".", width-n), byteSize(done), byteSize(total))
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
