package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// header describes the run: date, machine, Docker and weft versions.
func (b *bench) header(ctx context.Context, quick bool) []string {
	mode := "full"
	if quick {
		mode = "quick (-quick: fewer runs, a smoke check only)"
	}
	cpu := fmt.Sprintf("%d CPUs", runtime.NumCPU())
	if m := procField("/proc/cpuinfo", "model name"); m != "" {
		cpu += " (" + m + ")"
	}
	mem := procField("/proc/meminfo", "MemTotal")
	var kb int64
	if _, err := fmt.Sscanf(mem, "%d kB", &kb); err == nil {
		mem = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	docker := "not started"
	// Any Docker host will do: they all run the same dockerd (with -only
	// overlay the benchmark host is never started).
	if ds := b.lab.DockerHosts(); len(ds) > 0 {
		v, err := ds[0].Docker(ctx, "version", "-f", "{{.Server.Version}}")
		if err != nil {
			v = "unknown"
		}
		docker = v + " (a private dockerd in a lab network namespace; weft installed as the managed plugin " + pluginName + ")"
	}
	weft := "unknown"
	if out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output(); err == nil {
		weft = strings.TrimSpace(string(out))
	}
	return []string{
		"# weft benchmark",
		"",
		"- Date: " + time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		fmt.Sprintf("- Machine: Linux %s, %s, %s", strings.TrimSpace(string(kernel)), cpu, mem),
		"- Docker: " + docker,
		"- weft: " + weft + " (built by `make plugin`); runs: " + mode,
	}
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "".
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
