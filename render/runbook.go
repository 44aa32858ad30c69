package render

import (
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// runbook returns docs/<svc>-migration.md: the migration in the task
// list's order (backup, stop, seed, volume, config files, deploy, verify,
// drain drill, hold, finish), with the ferry command for each step, what to
// check, and how to roll back from it. It names where secrets live, never
// their values (the spec holds none).
func runbook(s *ferry.Service) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	csi := s.Storage.Kind == ferry.StorageCSI
	hold := config.FormatDuration(s.Hold)
	mod := "module." + s.Name

	w("# Migrating %s from docker-compose to Nomad\n\n", s.Name)
	w("Written by `ferry render` from `ferry.hcl`. `ferry migrate -f ferry.hcl` runs steps 1-7 in order,\n")
	w("journals each one and resumes after a crash; this page is what it does, for reading and for doing by hand.\n\n")
	w("| | |\n|---|---|\n")
	w("| compose service | `%s` (project `%s`) |\n", s.Source.Service, s.Source.Project)
	w("| Nomad job | `%s` in namespace `%s`, region `%s` |\n", s.Name, s.Target.Namespace, s.Target.Region)
	for _, d := range s.Databases {
		w("| database `%s` | `%s` -> replica `s3://%s/%s` |\n", d.Name, d.Path, s.ObjectStore.Bucket, d.ReplicaPath)
	}
	if csi {
		w("| config volume | CSI `%s` (plugin `%s`), mounted at `%s` |\n", s.Storage.VolumeID, s.Storage.PluginID, s.ConfigDir)
	} else {
		w("| config volume | host volume `%s`, mounted at `%s` |\n", s.Storage.VolumeID, s.ConfigDir)
	}
	w("| credentials | %s `%s` (keys `%s`, `%s`) |\n", secretsWhere(s), s.Secrets.Path, s.Secrets.AccessKeyKey, s.Secrets.SecretKeyKey)
	if s.Ingress.Host != "" {
		w("| URL | https://%s |\n", s.Ingress.Host)
	}
	w("\n**Rollback, at any step before 10:** `ferry rollback -f ferry.hcl` (stops the Nomad job, starts the compose\n")
	w("container on its untouched data). By hand: `nomad job stop -namespace=%s %s`, then\n", s.Target.Namespace, s.Name)
	w("`docker start %s` on the compose host.\n\n", s.Source.Service)

	w("## 0. Before the day\n\n")
	w("- `ferry rehearse -f ferry.hcl`: the whole migration on this machine against a copy of the data.\n")
	w("- `ferry plan -f ferry.hcl`: preflight checks (compose service found, bucket reachable, %s, images pinned).\n", planStorage(s))
	if s.Mesh.Mode != ferry.MeshNone {
		w("- Consul intentions allow `%s` -> the object store and the ingress -> `%s`.\n", s.Name, s.Name)
	}
	w("\n")

	w("## 1. Back up the compose data\n\n")
	w("`ferry migrate` archives the compose volume with a sha256 manifest. Each database is copied through\n")
	w("SQLite (its `-wal` included): the app may never checkpoint, so the main file alone can be empty.\n")
	w("Rollback: nothing changed yet.\n\n")

	w("## 2. Stop the compose service\n\n")
	w("`docker stop %s`. Downtime starts here (goal: under 10 minutes).\n", s.Source.Service)
	w("Rollback: `docker start %s`.\n\n", s.Source.Service)

	w("## 3. Seed the replica\n\n")
	w("ferry uploads each database with litestream and waits until the replica holds its last transaction\n")
	w("(not a fixed sleep), then restores it to a temp file and compares fingerprints with the source.\n")
	w("Check by hand with litestream v0.5 (LTX files, not v0.3 \"generations\"):\n\n")
	for _, d := range s.Databases {
		w("    litestream ltx -level all %s\n", replicaURL(s, d))
	}
	w("\nRollback: `docker start %s` (the replica is only a copy).\n\n", s.Source.Service)

	if csi {
		w("## 4. Create the config volume\n\n")
		w("    terraform apply -target=%s.nomad_csi_volume.%s\n\n", mod, tfIdent(s.Storage.VolumeID))
		w("The volume has `prevent_destroy`: `nomad volume delete` destroys its data.\n")
		w("Rollback: `docker start %s`; leave the volume.\n\n", s.Source.Service)
	} else {
		w("## 4. Prepare the host volume\n\n")
		w("Host volume `%s` must exist in the client config of the nodes that may run the job.\n", s.Storage.VolumeID)
		w("Rollback: `docker start %s`.\n\n", s.Source.Service)
	}

	w("## 5. Copy the config files onto the volume\n\n")
	if len(s.ConfigFiles) == 0 {
		w("No config files to carry.\n")
	}
	for _, p := range s.ConfigFiles {
		w("- `%s`\n", p)
	}
	if len(s.Disposable) > 0 {
		w("\nNot carried (disposable): ")
		for i, p := range s.Disposable {
			if i > 0 {
				w(", ")
			}
			w("`%s`", p)
		}
		w(".\n")
	}
	w("\nferry writes them with a one-off batch job and checks their sha256. Databases are never copied to the\n")
	w("volume: they live on the allocation's sticky disk and litestream carries them between nodes.\n")
	w("Rollback: `docker start %s`.\n\n", s.Source.Service)

	w("## 6. Deploy\n\n")
	w("    terraform plan -target=%s -out=tfplan\n    terraform apply tfplan\n\n", mod)
	w("(or `ferry migrate` with `apply = \"api\"`). The `%s` prestart task restores each database with an\n", ferry.TaskRestore)
	w("integrity check and fails, so Nomad retries and the app does not start empty, when the object store does\n")
	w("not answer within %s or the replica does not restore", config.FormatDuration(s.Litestream.WaitTimeout))
	if s.NoPriorData {
		w(". This service is declared without prior data: with no replica it starts empty.\n")
	} else {
		w(" or is missing.\n")
	}
	w("Rollback: `ferry rollback -f ferry.hcl`.\n\n")

	w("## 7. Verify\n\n")
	w("`ferry verify -f ferry.hcl` checks: the job is healthy; the restore log says restored or kept;\n")
	w("the `%s` sidecar is replicating (sync interval %s); ", ferry.TaskReplicate, config.FormatDuration(s.Litestream.SyncInterval))
	w("`%s` answers on `%s`; the user tables have the same rows as the backup", s.Name, s.Health.Path)
	var tables []string
	for _, d := range s.Databases {
		tables = append(tables, d.UserTables...)
	}
	if len(tables) > 0 {
		w(" (`%s`)", strings.Join(tables, "`, `"))
	}
	w(". Then by hand: log in, see your history, check the integrations.\n")
	w("Rollback: `ferry rollback -f ferry.hcl`.\n\n")

	w("## 8. Drain drill\n\n")
	w("`ferry drill failover -f ferry.hcl` drains the node running `%s` (deadline %s) and measures the outage\n", s.Name, config.FormatDuration(s.Drill.DrainDeadline))
	w("until it is healthy on another node, its data carried by the sticky disk or restored from the replica.\n")
	w("`ferry drill restore -f ferry.hcl` proves the replica restores")
	if s.Drill.Schedule != "" {
		w("; the `%s` job also does that on schedule `%s` and fails when the replica is older than %s", DrillJobName(s), s.Drill.Schedule, config.FormatDuration(s.Drill.MaxReplicaAge))
	}
	w(".\nRollback: `ferry rollback -f ferry.hcl`.\n\n")

	w("## 9. Hold for %s\n\n", hold)
	w("Keep the stopped compose container and its volume. `ferry status -f ferry.hcl` shows the replication lag.\n")
	w("Rollback: `ferry rollback --force -f ferry.hcl`; without --force it refuses after a verify, because writes made on Nomad since step 6 are in the replica only, not in the compose volume.\n\n")

	w("## 10. Finish\n\n")
	w("`ferry finish -f ferry.hcl` removes the compose service from its compose file (comments kept) after the hold.\n")
	w("No rollback after this point: restore from the replica instead (`litestream restore`).\n\n")

	w("## If a replica breaks\n\n")
	w("When the restore task or the drill reports that the replica holds files that do not restore, the live\n")
	w("database is still good: re-seed the replica from it while the service runs (`ferry migrate` seed step),\n")
	w("then run `ferry drill restore`. A database that fails with \"database disk image is malformed\" is restored\n")
	w("clean with its stray `-wal`/`-shm` removed; the restore task does this when the main file is absent.\n")
	return []byte(b.String())
}

func secretsWhere(s *ferry.Service) string {
	if s.Secrets.Provider == ferry.SecretsNomad {
		return "Nomad Variable"
	}
	return "Vault KV v2"
}

func planStorage(s *ferry.Service) string {
	if s.Storage.Kind == ferry.StorageCSI {
		return "CSI plugin `" + s.Storage.PluginID + "` healthy"
	}
	return "host volume `" + s.Storage.VolumeID + "` present"
}
