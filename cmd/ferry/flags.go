package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/pflag"
)

// Versions and counts are read in base 10. pflag's integer flags read
// 010 as octal and 0x2 as hexadecimal: a zero-padded version, as file names
// write them (00010_x.sql), would be another number.

// decimal is a pflag.Value for an int64 read in base 10.
type decimal struct{ p *int64 }

func (d decimal) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*d.p = v
	return nil
}

func (d decimal) String() string { return strconv.FormatInt(*d.p, 10) }
func (d decimal) Type() string   { return "int" }

// int64Flag adds an int64 flag read in base 10.
func int64Flag(fs *pflag.FlagSet, p *int64, name, short string, value int64, usage string) {
	*p = value
	fs.VarP(decimal{p}, name, short, usage)
}

// decimalInt is a pflag.Value for an int read in base 10.
type decimalInt struct{ p *int }

func (d decimalInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*d.p = v
	return nil
}

func (d decimalInt) String() string { return strconv.Itoa(*d.p) }
func (d decimalInt) Type() string   { return "int" }

// intFlag adds an int flag read in base 10.
func intFlag(fs *pflag.FlagSet, p *int, name, short string, value int, usage string) {
	*p = value
	fs.VarP(decimalInt{p}, name, short, usage)
}
