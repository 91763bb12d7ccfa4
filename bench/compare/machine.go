package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// machine describes where the benchmark ran.
type machine struct {
	Host      string            `json:"host"`
	CPU       string            `json:"cpu"`
	Cores     int               `json:"cores"`
	MemoryGiB float64           `json:"memory_gib"`
	Disk      string            `json:"disk"`
	OS        string            `json:"os"`
	Kernel    string            `json:"kernel"`
	Go        string            `json:"go"`
	Databases map[string]string `json:"databases"`
	Tools     map[string]string `json:"tools"`
}

// describeMachine reads the machine's description from /proc and friends;
// what it cannot read stays empty.
func describeMachine(ctx context.Context, workdir string) machine {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), Databases: map[string]string{}, Tools: map[string]string{}}
	m.Host, _ = os.Hostname()
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.MemoryGiB = float64(int(n/1024/1024*10+0.5)) / 10
	}
	if name := procField("/etc/os-release", "PRETTY_NAME"); name != "" {
		m.OS = strings.Trim(name, `"`)
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.Kernel = utsString(u.Release[:])
	}
	m.Disk = describeDisk(ctx, workdir)
	return m
}

// procField returns the value of the first "key: value" or "key=value"
// line of a file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, sep := range []string{":", "="} {
			k, v, ok := strings.Cut(line, sep)
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}

func utsString(b []int8) string {
	var s strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		s.WriteByte(byte(c))
	}
	return s.String()
}

// describeDisk names the file system and device holding dir, as df
// reports them, and whether the kernel calls the device rotational (a
// virtual disk usually says so whatever is behind it).
func describeDisk(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "df", "-hT", dir).Output()
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(lines) < 2 || len(f) < 3 {
		return ""
	}
	desc := fmt.Sprintf("%s %s %s", f[0], f[1], f[2])
	dev := strings.TrimPrefix(f[0], "/dev/")
	for i := len(dev); i > 0; i-- {
		if b, err := os.ReadFile("/sys/block/" + dev[:i] + "/queue/rotational"); err == nil {
			if strings.TrimSpace(string(b)) == "1" {
				return desc + ", rotational=1"
			}
			return desc + ", rotational=0"
		}
	}
	return desc
}
