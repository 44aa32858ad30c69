package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/ferry-migrate/ferry/nomad/nomadtest"
)

// TestFailoverDrill: against the double scripted to reschedule onto the
// second node, the failover drill reports RTO and RPO, verifies the data,
// and leaves every node eligible, also when killed midway and re-run.
func TestFailoverDrill(t *testing.T) {
	w := newWorld(t, nomadtest.Healthy)
	if code, out, errOut := w.ferry("migrate", "-f", w.spec); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}

	code, out, errOut := w.ferry("drill", "failover", "-f", w.spec, "--json")
	if code != 0 {
		t.Fatalf("drill failover: exit %d\n%s%s", code, out, errOut)
	}
	var doc struct {
		Data struct {
			From     string `json:"from_node"`
			To       string `json:"to_node"`
			RTO      int64  `json:"rto_ns"`
			RPOZero  bool   `json:"rpo_zero"`
			Eligible bool   `json:"node_eligible_again"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	d := doc.Data
	if d.From == "" || d.To == "" || d.From == d.To || d.RTO <= 0 || !d.RPOZero || !d.Eligible {
		t.Fatalf("drill result %+v: want a move to another node, an RTO, RPO 0 and the node eligible", d)
	}
	w.allEligible()
	code, status, _ := w.ferry("status", "-f", w.spec)
	if code != 0 || !strings.Contains(status, "drill failover") || !strings.Contains(status, "passed") {
		t.Errorf("status does not show the drill:\n%s", status)
	}

	// Killed once the drain started: the node stays draining until the
	// drill runs again, which gives it back first.
	journal := filepath.Join(w.dir, ".ferry", "overseerr", "journal.json")
	cmd := w.ferryProcess("drill", "failover", "-f", w.spec)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(readFile(journal), "drill_draining_node") {
		if time.Now().After(deadline) {
			t.Fatal("the drill never recorded its drain")
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if code, out, errOut := w.ferry("drill", "failover", "-f", w.spec); code != 0 {
		t.Fatalf("drill failover after a killed one: exit %d\n%s%s", code, out, errOut)
	}
	w.allEligible()
}

// TestRestoreDrillAndPointInTime: the restore drill passes on a fresh
// replica, and ferry restore writes a file for inspection.
func TestRestoreDrillAndRestore(t *testing.T) {
	w := newWorld(t, nomadtest.Healthy)
	if code, out, errOut := w.ferry("migrate", "-f", w.spec); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := w.ferry("drill", "restore", "-f", w.spec)
	if code != 0 || !strings.Contains(out, "passed") {
		t.Fatalf("drill restore: exit %d\n%s%s", code, out, errOut)
	}
	to := filepath.Join(t.TempDir(), "inspect.db")
	code, out, errOut = w.ferry("restore", "-f", w.spec, "--to", to)
	if code != 0 || !strings.Contains(out, "integrity check passed") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = w.ferry("fingerprint", to)
	if code != 0 || !strings.Contains(out, "table user ") {
		t.Fatalf("fingerprint of the restored file:\n%s", out)
	}
	w.noSecrets(out, errOut)
}

func (w *world) allEligible() {
	w.t.Helper()
	c, err := api.NewClient(&api.Config{Address: w.nomad.URL})
	if err != nil {
		w.t.Fatal(err)
	}
	nodes, _, err := c.Nodes().List(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, n := range nodes {
		if n.SchedulingEligibility != api.NodeSchedulingEligible || n.Drain {
			w.t.Errorf("node %s is %s (drain %t) after the drill", n.Name, n.SchedulingEligibility, n.Drain)
		}
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
