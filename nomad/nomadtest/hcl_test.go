package nomadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseJobHCLKeepsRuntimeReferencesLiteral(t *testing.T) {
	job, err := ParseJobHCL(`job "web" {
  datacenters = ["dc1"]
  group "g" {
    network {
      mode = "bridge"
      port "http" { to = 5055 }
      port "admin" { static = 8080 }
    }
    volume "config" {
      type            = "csi"
      source          = "glusterfs_web_config"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }
    service {
      name = "web"
      port = "http"
      connect {
        sidecar_service {
          proxy {
            transparent_proxy {}
          }
        }
      }
      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
        expose   = true
      }
    }
    task "app" {
      driver = "docker"
      config {
        image = "app:1"
        args  = ["--port", "${NOMAD_PORT_http}", "${attr.cpu.arch}", "${meta.rack}", "${node.unique.name}"]
        mount {
          type   = "bind"
          source = "local/x"
          target = "/x"
        }
      }
      template {
        data        = "{{ with secret \"nomad/default/web\" }}{{ .Data.data.KEY }}{{ end }}"
        destination = "secrets/s3.env"
        env         = true
      }
      vault {}
      volume_mount {
        volume      = "config"
        destination = "/app/config"
      }
      resources {
        memory     = 256
        memory_max = 512
      }
    }
  }
}`)
	if err != nil {
		t.Fatal(err)
	}
	job.Canonicalize()
	tg := job.TaskGroups[0]
	task := tg.Tasks[0]
	args := task.Config["args"].([]any)
	for i, want := range []string{"${NOMAD_PORT_http}", "${attr.cpu.arch}", "${meta.rack}", "${node.unique.name}"} {
		if args[i+1] != want {
			t.Errorf("arg %d = %v, want the literal %s", i+1, args[i+1], want)
		}
	}
	if m, ok := task.Config["mount"].([]map[string]any); !ok || m[0]["target"] != "/x" {
		t.Errorf("config mount = %#v, want a list with one block", task.Config["mount"])
	}
	if tg.Networks[0].DynamicPorts[0].To != 5055 || tg.Networks[0].ReservedPorts[0].Value != 8080 {
		t.Errorf("ports = %+v / %+v", tg.Networks[0].DynamicPorts, tg.Networks[0].ReservedPorts)
	}
	if v := tg.Volumes["config"]; v == nil || v.Type != "csi" || v.Source != "glusterfs_web_config" {
		t.Errorf("volume = %+v", tg.Volumes["config"])
	}
	if s := tg.Services[0]; s.Connect == nil || s.Connect.SidecarService == nil || s.Connect.SidecarService.Proxy == nil ||
		s.Connect.SidecarService.Proxy.TransparentProxy == nil || !s.Checks[0].Expose {
		t.Errorf("service = %+v", s)
	}
	if *task.Resources.MemoryMaxMB != 512 || task.Vault == nil || *task.Templates[0].DestPath != "secrets/s3.env" {
		t.Errorf("task = %+v", task)
	}

	_, err = ParseJobHCL("job \"x\" {\n  a = \n}\n")
	if err == nil || !strings.HasPrefix(err.Error(), "input.hcl:2,") {
		t.Errorf("bad HCL: err = %v, want a positioned diagnostic", err)
	}
}

// TestParseRenderedJobspecs parses every jobspec the render package
// produced in this tree (examples and golden files): the double must
// accept what ferry deploys.
func TestParseRenderedJobspecs(t *testing.T) {
	var files []string
	for _, pattern := range []string{"../../examples/*/out/modules/*/*.nomad.hcl", "../../render/testdata/*/out/modules/*/*.nomad.hcl"} {
		m, _ := filepath.Glob(pattern)
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("no rendered jobspecs in this tree yet")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		job, err := ParseJobHCL(string(src))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		job.Canonicalize()
		if job.ID == nil || len(job.TaskGroups) == 0 {
			t.Errorf("%s: parsed to a job without ID or groups", f)
		}
	}
}
