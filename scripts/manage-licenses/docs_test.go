package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The pages an operator reads: README.md and docs/*.md.
func docPages(t *testing.T) map[string]string {
	root := filepath.Join("..", "..")
	files, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	files = append(files, filepath.Join(root, "README.md"))
	pages := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(f)
		pages[abs] = string(b)
	}
	if len(pages) < 6 {
		t.Fatalf("found %d pages", len(pages))
	}
	return pages
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	slugDrop  = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	codeRE    = regexp.MustCompile("```[a-z]*\\n([\\s\\S]*?)```|`([^`\\n]+)`")
	// A command line: manage-licenses, global flags (some with a value), the command, the rest.
	commandRE = regexp.MustCompile(`manage-licenses((?:\s+--(?:json|db \S+|secret-arn \S+|secret-file \S+))*)\s+([a-z][a-z-]*)([^|;&#\n]*)`)
	flagRE    = regexp.MustCompile(`(?:^|\s|\[)(--[a-z][a-z-]*)`)
)

// anchors are the ids GitHub gives a page's headings.
func anchors(page string) map[string]bool {
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(page, -1) {
		h := strings.ToLower(strings.ReplaceAll(m[1], "`", ""))
		out[strings.ReplaceAll(slugDrop.ReplaceAllString(h, ""), " ", "-")] = true
	}
	return out
}

// Every link of the docs leads somewhere: a file of the repository and,
// with #fragment, one of its headings.
func TestDocsLinks(t *testing.T) {
	t.Parallel()
	pages := docPages(t)
	for path, page := range pages {
		for _, m := range linkRE.FindAllStringSubmatch(page, -1) {
			target := m[1]
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := path
			if file != "" {
				dest = filepath.Join(filepath.Dir(path), file)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %s: no such file", filepath.Base(path), target)
					continue
				}
			}
			if frag == "" {
				continue
			}
			body, ok := pages[dest]
			if !ok {
				b, _ := os.ReadFile(dest)
				body = string(b)
			}
			if !anchors(body)[frag] {
				t.Errorf("%s: link %s: %s has no heading #%s", filepath.Base(path), target, filepath.Base(dest), frag)
			}
		}
	}
}

// Every manage-licenses command the docs show exists, with the flags shown:
// in code (manage-licenses COMMAND --flag ...) and in the operator guide's
// table of commands.
func TestDocsCommands(t *testing.T) {
	t.Parallel()
	help := map[string]string{}
	helpOf := func(cmd string) (string, bool) {
		if h, ok := help[cmd]; ok {
			return h, h != ""
		}
		out, err := exec.Command(binary, cmd, "--help").Output()
		if err != nil || !strings.Contains(string(out), "manage-licenses "+cmd) {
			help[cmd] = ""
			return "", false
		}
		help[cmd] = string(out)
		return help[cmd], true
	}
	check := func(page, cmd, rest string) {
		h, ok := helpOf(cmd)
		if !ok {
			t.Errorf("%s: %q is not a manage-licenses command", page, cmd)
			return
		}
		for _, f := range flagRE.FindAllStringSubmatch(rest, -1) {
			if !strings.Contains(h, f[1]+" ") && !strings.Contains(h, f[1]+"\n") {
				t.Errorf("%s: manage-licenses %s has no flag %s", page, cmd, f[1])
			}
		}
	}
	checked := 0
	for path, page := range docPages(t) {
		name := filepath.Base(path)
		for _, code := range codeRE.FindAllStringSubmatch(page, -1) {
			text := code[1] + code[2]
			for _, m := range commandRE.FindAllStringSubmatch(text, -1) {
				check(name, m[2], m[3])
				checked++
			}
		}
		if name != "operator-guide.md" {
			continue
		}
		// The table of commands: its first cell names commands, in code.
		for _, line := range strings.Split(page, "\n") {
			cells := strings.Split(line, " | ")
			if !strings.HasPrefix(line, "| `") || len(cells) < 3 || strings.Contains(cells[0], "CAIO_") || strings.Contains(cells[0], "AWS_") {
				continue
			}
			for _, span := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[0], -1) {
				words := strings.Fields(span[1])
				if len(words) == 0 || !regexp.MustCompile(`^[a-z][a-z-]+$`).MatchString(words[0]) {
					continue
				}
				check(name, words[0], strings.Join(words[1:], " "))
				checked++
			}
		}
	}
	if checked < 50 {
		t.Fatalf("only %d command lines found in the docs", checked)
	}
}
