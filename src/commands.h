/* commands.h: the `simdgan sample` and `simdgan eval` commands (cmd_eval.c).
 * Each takes the arguments after the command's name and returns the exit
 * status: 0, or 2 for bad input after one line on stderr. */
#ifndef SIMDGAN_COMMANDS_H
#define SIMDGAN_COMMANDS_H

int sg_cmd_sample(int argc, char **argv);
int sg_cmd_eval(int argc, char **argv);

#endif
