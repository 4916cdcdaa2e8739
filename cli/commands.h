/* Subcommands of the histoplan command line. Each takes argv with argv[0] = its own name. */
#ifndef HP_CLI_COMMANDS_H
#define HP_CLI_COMMANDS_H

/* Exit statuses. analyze: HP_EXIT_NOT_RUN when nothing could run (the model or the output
 * folder); the model commands use 3 for a model refused at load (cli/model_cmd.h). */
enum { HP_EXIT_OK = 0, HP_EXIT_FAILED = 1, HP_EXIT_USAGE = 2, HP_EXIT_NOT_RUN = 3 };

int hp_cli_model(int argc, char **argv);   /* cli/model_cmd.c */
int hp_cli_synth(int argc, char **argv);   /* cli/synth_cmd.c */
int hp_cli_slide(int argc, char **argv);   /* cli/slide_cmd.c */
int hp_cli_analyze(int argc, char **argv); /* cli/analyze_cmd.c */
int hp_cli_report(int argc, char **argv);  /* cli/report_cmd.c */
int hp_cli_report_signers(int argc, char **argv); /* cli/report_signers_cmd.c: `report signers ...` */
int hp_cli_deid(int argc, char **argv);    /* cli/deid_cmd.c */
int hp_cli_upscale(int argc, char **argv); /* cli/upscale_cmd.c */
int hp_cli_serve(int argc, char **argv);   /* cli/serve_cmd.c */
int hp_cli_worker(int argc, char **argv);  /* cli/worker_cmd.c */
int hp_cli_eval(int argc, char **argv);    /* cli/eval_cmd.c */
int hp_cli_eval_wsi(int argc, char **argv); /* cli/eval_wsi_cmd.c */
int hp_cli_batch_cmd(int argc, char **argv);   /* cli/batch_cmd.c: `batch merge OUT` */

#endif
