package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mqgate/mqgate/authn/file"
	"github.com/mqgate/mqgate/authn/passhash"
)

const passwdUsage = `usage:
  mqgate passwd [-c] [-a ALGORITHM] [-cost N] [-iterations N] FILE USER [PASSWORD]   add or change USER (password read from stdin when omitted)
  mqgate passwd -D FILE USER                               delete USER
`

// passwdCommand writes entries of the users file read by the file
// authentication backend (auth.file.path). It returns the exit code.
func passwdCommand(args []string, stdout, stderr io.Writer) int {
	return passwdRun(args, os.Stdin, stdout, stderr)
}

// passwdRun is passwdCommand with its standard input.
func passwdRun(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, passwdUsage); fs.PrintDefaults() }
	create := fs.Bool("c", false, "create the file afresh (existing entries are lost)")
	del := fs.Bool("D", false, "delete the user")
	alg := fs.String("a", passhash.Bcrypt, "hash: bcrypt, argon2id, pbkdf2-sha256 or pbkdf2-sha512")
	params := passhash.DefaultParams
	fs.IntVar(&params.BcryptCost, "cost", params.BcryptCost, "bcrypt cost (4..31)")
	fs.IntVar(&params.PBKDF2Iterations, "iterations", params.PBKDF2Iterations, "PBKDF2 iterations")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if *del {
		if len(rest) != 2 || *create {
			fs.Usage()
			return 2
		}
		if err := file.DeleteUser(rest[0], rest[1]); err != nil {
			fmt.Fprintf(stderr, "mqgate passwd: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "deleted %s\n", rest[1])
		return 0
	}
	if len(rest) != 2 && len(rest) != 3 {
		fs.Usage()
		return 2
	}
	var pw string
	if len(rest) == 3 {
		pw = rest[2]
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			fmt.Fprintf(stderr, "mqgate passwd: reading the password: %v\n", err)
			return 1
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		fmt.Fprintln(stderr, "mqgate passwd: empty password")
		return 1
	}
	enc, err := passhash.EncodeParams(*alg, []byte(pw), params)
	if err != nil {
		fmt.Fprintf(stderr, "mqgate passwd: %v\n", err)
		return 2
	}
	if err := file.SetUser(rest[0], rest[1], enc, *create); err != nil {
		fmt.Fprintf(stderr, "mqgate passwd: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "set %s (%s)\n", rest[1], *alg)
	return 0
}
