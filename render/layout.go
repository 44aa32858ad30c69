package render

import (
	"path"
	"strings"

	"github.com/ferry-migrate/ferry"
)

// The databases live on the allocation's sticky, migrating ephemeral disk,
// never on the network volume. Each container directory that holds a
// database is one directory on the alloc disk, data/<name> (name of the
// first database in it), bind-mounted over the container directory; two
// databases in one container directory (the media server's library and
// blobs) share it.
//
// When that directory also holds what must stay on the config volume (it is
// the config dir, an ancestor of it, or holds a config file: Sonarr and
// Radarr keep radarr.db right in /config), a directory mount would hide the
// volume. Then the database file and its -wal and -shm are bind-mounted one
// by one from the alloc disk, so SQLite's WAL still never touches the
// network volume; the restore task creates the three files beforehand.

// DBDir is one alloc-disk directory of databases.
type DBDir struct {
	Alloc     string // relative to the alloc dir, e.g. data/db
	Container string // the directory inside the app's container
}

// DBDirs returns the alloc-disk directories of s's databases, in the order
// the databases are declared.
func DBDirs(s *ferry.Service) []DBDir {
	var dirs []DBDir
	seen := map[string]bool{}
	for _, d := range s.Databases {
		if seen[d.Dir()] {
			continue
		}
		seen[d.Dir()] = true
		dirs = append(dirs, DBDir{Alloc: "data/" + d.Name, Container: d.Dir()})
	}
	return dirs
}

// AllocDBPath is where database d of s lives, relative to the alloc dir
// (NOMAD_ALLOC_DIR): data/db/db.sqlite3 for Overseerr.
func AllocDBPath(s *ferry.Service, d ferry.Database) string {
	for _, dir := range DBDirs(s) {
		if dir.Container == d.Dir() {
			return path.Join(dir.Alloc, d.File())
		}
	}
	panic("render: database " + d.Name + " is not in DBDirs") // unreachable
}

// Mount is a bind mount of the app task: Source relative to the alloc dir,
// Target inside the container.
type Mount struct {
	Source string
	Target string
}

// Mounts returns the bind mounts that put s's databases on the alloc disk.
func Mounts(s *ferry.Service) []Mount {
	var ms []Mount
	for _, dir := range DBDirs(s) {
		if !FileMounted(s, dir.Container) {
			ms = append(ms, Mount{Source: dir.Alloc, Target: dir.Container})
			continue
		}
		for _, d := range s.Databases {
			if d.Dir() != dir.Container {
				continue
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				ms = append(ms, Mount{Source: path.Join(dir.Alloc, d.File()+suffix), Target: d.Path + suffix})
			}
		}
	}
	return ms
}

// FileMounted reports whether the databases in container directory dir are
// mounted file by file (see the package layout notes) rather than as a
// directory.
func FileMounted(s *ferry.Service, dir string) bool {
	within := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") || dir == "/" }
	if s.ConfigDir != "" && within(s.ConfigDir) {
		return true
	}
	for _, f := range s.ConfigFiles {
		if within(f) {
			return true
		}
	}
	return false
}

// ephemeralDiskMB is the alloc disk size requested: 100 MB per database (the
// task list's figure for Overseerr's one database), at least 100.
func ephemeralDiskMB(s *ferry.Service) int64 {
	return int64(100 * max(1, len(s.Databases)))
}

// replicaURL is how messages name a database's replica.
func replicaURL(s *ferry.Service, d ferry.Database) string {
	return "s3://" + s.ObjectStore.Bucket + "/" + d.ReplicaPath
}
