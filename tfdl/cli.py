"""The `tfdl` command: run, serve, predict, bench, edge, embeddings, rl, env, doctor, atlas.

Each command imports TensorFlow only when it runs, so `tfdl --help` is quick.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_run(args) -> int:
    from tfdl.config import load_config

    config = load_config(args.config, args.set)  # fails here, before any work
    from tfdl.run import run

    result = run(config, output_dir=args.output_dir)
    if "parity" not in result.metrics:  # a worker that is not the chief: it trained, the chief exports
        return 0
    return 0 if result.metrics["parity"]["passed"] else 1


def _cmd_bench_data(args) -> int:
    import json

    from tfdl.config import load_config

    config = load_config(args.config, args.set)
    from tfdl.data_bench import bench_data

    result = bench_data(config, min_seconds=args.seconds, steps=args.steps)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.describe())
    return 0


def _cmd_serve(args) -> int:
    from tfdl.serving.server import ServerOptions, serve

    try:
        batching = None
        if args.enable_batching:
            from tfdl.serving.batching import BatchingParameters, read_batching_parameters

            batching = read_batching_parameters(args.batching_parameters_file) if args.batching_parameters_file \
                else BatchingParameters()
        token = Path(args.auth_token_file).read_text().strip() if args.auth_token_file else None
        options = ServerOptions(
            host=args.host, rest_api_port=args.rest_api_port, grpc_port=args.port,
            file_system_poll_wait_seconds=args.file_system_poll_wait_seconds, batching=batching,
            max_body_bytes=args.max_body_bytes,
            request_timeout_s=args.rest_api_timeout_in_ms / 1000 if args.rest_api_timeout_in_ms else None,
            auth_token=token, cors_origins=tuple(args.cors_origin), access_log=not args.no_access_log,
        )
        serve(options, model_base_path=args.model_base_path, model_name=args.model_name,
              model_config_file=args.model_config_file)
    except (FileNotFoundError, ValueError, OSError) as error:
        print(f"tfdl serve: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_predict(args) -> int:
    import json

    from tfdl.serving.client import Client, ServingClientError, load_request

    try:
        request = load_request(args.input, columnar=args.columnar)
        with Client(args.url, args.model_name, timeout=args.timeout) as client:
            response = client.predict(
                **request, signature_name=args.signature_name, version=args.version, label=args.label
            )
    except (ValueError, OSError, ServingClientError) as error:
        print(f"tfdl predict: {error}", file=sys.stderr)
        return 1
    json.dump(response, sys.stdout, indent=None if args.compact else 2)
    sys.stdout.write("\n")
    return 0


def _cmd_embeddings(args) -> int:
    from tfdl.evaluation.embeddings import analogy, nearest_neighbours

    try:
        if args.embeddings_command == "neighbours":
            rows = nearest_neighbours(args.run_dir, args.word, args.k)
        else:
            rows = analogy(args.run_dir, args.a, args.b, args.c, args.k)
    except (ValueError, OSError) as error:
        print(f"tfdl embeddings: {error}", file=sys.stderr)
        return 2
    for word, similarity in rows:
        print(f"{word}\t{similarity:.4f}")
    return 0


def _cmd_rl_play(args) -> int:
    import yaml

    from tfdl.rl import play
    from tfdl.schema import ConfigError

    path = Path(args.path)
    env_name = args.env
    if (path / "config.yaml").is_file():  # a run folder: its environment and its latest export
        from tfdl.config import parse_config
        from tfdl.export.serving_layout import list_versions

        config = parse_config(yaml.safe_load((path / "config.yaml").read_text()), source=str(path / "config.yaml"))
        if config.rl is None:
            raise ConfigError(f"{path} is not a reinforcement-learning run (its config has no rl: section)")
        from tfdl.tasks.reinforcement import served_model_name

        env_name = env_name or config.rl.environment.name
        model_dir = path / "export" / "serving" / served_model_name(config)
        versions = list_versions(model_dir)
        if not versions:
            raise ConfigError(f"{model_dir} holds no exported policy; has the run finished?")
        path = model_dir / str(versions[-1])
    if env_name is None:
        raise ConfigError(f"--env: name the environment {path} was trained on, e.g. --env CartPole-v1")
    try:
        returns = play(path, env_name, episodes=args.episodes, seed=args.seed, gif_path=args.gif)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"tfdl rl play: {error}", file=sys.stderr)
        return 2
    for k, value in enumerate(returns):
        print(f"episode {k} (seed {args.seed + k}): return {value:.1f}")
    if args.gif:
        print(f"first episode recorded: {args.gif}")
    return 0


def _cmd_env(args) -> int:
    from tfdl.environment import main_env

    return main_env(args)


def _cmd_doctor(args) -> int:
    from tfdl.doctor import main_doctor

    return main_doctor(args)


def _cmd_migrate(args) -> int:
    from tfdl.migration import main_migrate

    return main_migrate(args)


def _cmd_edge(args) -> int:
    # The edge runner has its own parser and imports no TensorFlow: it runs
    # on devices that have only LiteRT and numpy.
    from tfdl.serving.edge import main as edge_main

    return edge_main(args.edge_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfdl", description=__doc__.splitlines()[0])
    from tfdl import __version__

    parser.add_argument("--version", action="version", version=f"tfdl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="train, evaluate, export and report one config")
    run.add_argument("config", nargs="?", default=None,
                     help="a YAML file or the name of a shipped config (default: digits_cnn)")
    run.add_argument("--output-dir", default=None, help="where the run writes (default: runs/NAME)")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                     help="override a config field, e.g. --set training.epochs=5 (repeatable)")
    run.set_defaults(func=_cmd_run)

    bench = commands.add_parser("bench", help="measure a part of the path on this machine")
    bench_kinds = bench.add_subparsers(dest="bench", required=True)
    data = bench_kinds.add_parser("data", help="input pipeline throughput, and whether training is input-bound")
    data.add_argument("config", nargs="?", default=None,
                      help="a YAML file or the name of a shipped config (default: digits_cnn)")
    data.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                      help="override a config field (repeatable)")
    data.add_argument("--seconds", type=float, default=2.0, help="time the feed for at least this long")
    data.add_argument("--steps", type=int, default=200, help="training steps timed to measure the model")
    data.add_argument("--json", action="store_true", help="print the figures as JSON")
    data.set_defaults(func=_cmd_bench_data)

    edge = commands.add_parser("edge", help="run or time a .tflite model with LiteRT (no TensorFlow needed)",
                               add_help=False)
    edge.add_argument("edge_args", nargs=argparse.REMAINDER,
                      help="predict MODEL.tflite --input ... | bench MODEL.tflite (see `tfdl edge --help`)")
    edge.set_defaults(func=_cmd_edge)

    serve = commands.add_parser("serve", help="serve SavedModels over the TensorFlow Serving REST and gRPC APIs")
    models = serve.add_mutually_exclusive_group(required=True)
    models.add_argument("--model_base_path", "--model-base-path",
                        help="folder holding numbered version folders of one model's SavedModels")
    models.add_argument("--model_config_file", "--model-config-file",
                        help="several models: a TF Serving models.config (text proto) or a YAML file")
    serve.add_argument("--model_name", "--model-name", default=None,
                       help="name clients use in /v1/models/NAME (default: the base path's folder name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--rest_api_port", "--rest-api-port", type=int, default=8501, help="REST port (default 8501)")
    serve.add_argument("--port", type=int, default=8500, help="gRPC port, as TF Serving (default 8500; 0: no gRPC)")
    serve.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                       help="poll base paths for new versions this often (0: never)")
    serve.add_argument("--enable_batching", action="store_true", help="batch concurrent requests on the server")
    serve.add_argument("--batching_parameters_file", default=None,
                       help="TF Serving BatchingParameters text proto (max_batch_size, batch_timeout_micros, ...)")
    serve.add_argument("--rest_api_timeout_in_ms", type=int, default=30000,
                       help="REST requests taking longer get 504 (0: no limit)")
    serve.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024,
                       help="largest request body accepted (default 16 MiB)")
    serve.add_argument("--auth-token-file", default=None,
                       help="require `Authorization: Bearer TOKEN` on the REST API, TOKEN read from this file")
    serve.add_argument("--cors-origin", action="append", default=[], help="allow this CORS origin (repeatable)")
    serve.add_argument("--no-access-log", action="store_true", help="no JSON log line per request")
    serve.set_defaults(func=_cmd_serve)

    embeddings = commands.add_parser("embeddings", help="query the word vectors of an embedding run")
    queries = embeddings.add_subparsers(dest="embeddings_command", required=True)
    neighbours = queries.add_parser("neighbours", help="the nearest words by cosine similarity")
    neighbours.add_argument("run_dir", help="an embedding run's folder (or its projector/ folder)")
    neighbours.add_argument("word")
    neighbours.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    neighbours.set_defaults(func=_cmd_embeddings)
    analogies = queries.add_parser("analogy", help="the words closest to A - B + C (king man woman -> queen)")
    analogies.add_argument("run_dir", help="an embedding run's folder (or its projector/ folder)")
    for name in ("a", "b", "c"):
        analogies.add_argument(name, metavar=name.upper())
    analogies.add_argument("-k", type=int, default=5, help="how many answers (default 5)")
    analogies.set_defaults(func=_cmd_embeddings)

    rl = commands.add_parser("rl", help="reinforcement learning: play an exported policy")
    rl_commands = rl.add_subparsers(dest="rl_command", required=True)
    play = rl_commands.add_parser("play", help="run an exported policy for some episodes, optionally recording a GIF")
    play.add_argument("path", help="a run folder (runs/NAME) or a policy SavedModel folder")
    play.add_argument("--env", default=None, help="the Gymnasium environment (default: the run's)")
    play.add_argument("--episodes", type=int, default=1)
    play.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    play.add_argument("--gif", default=None, help="record the first episode here (needs gymnasium[classic-control])")
    play.set_defaults(func=_cmd_rl_play)

    env = commands.add_parser("env", help="report TensorFlow, Keras, devices and LiteRT; exit 1 on a mixed Keras 2/3 stack")
    env.add_argument("--json", action="store_true", help="print the report as JSON")
    env.set_defaults(func=_cmd_env)

    doctor = commands.add_parser("doctor", help="check a .keras file, SavedModel or .tflite; exit 1 on any problem found")
    doctor.add_argument("path", help="a .keras file, a SavedModel folder (e.g. serving/NAME/1) or a .tflite file")
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    doctor.set_defaults(func=_cmd_doctor)

    migrate = commands.add_parser(
        "migrate", help="a Keras 2 .h5 to a .keras file, or a Keras 2 SavedModel to a served (inference-only) "
                        "SavedModel; exit 1 naming what could not be migrated")
    migrate.add_argument("path", help="a Keras 2 .h5 file (model.save('m.h5')) or SavedModel folder")
    migrate.add_argument("output", help="for an .h5: the .keras file to write; for a SavedModel: the version "
                                        "folder to write, e.g. serving/NAME/1")
    migrate.add_argument("--input-names", action="append", default=[], metavar="OLD=NEW[,OLD=NEW]",
                         help="SavedModel: rename signature inputs (default: keep the Keras 2 keys)")
    migrate.add_argument("--output-names", action="append", default=[], metavar="OLD=NEW[,OLD=NEW]",
                         help="SavedModel: rename signature outputs (default: keep the Keras 2 keys)")
    migrate.add_argument("--signature", default="serving_default", help="SavedModel: the signature to wrap")
    migrate.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                         help="import MODULE first, so the custom layers it registers are found (repeatable)")
    migrate.add_argument("--json", action="store_true", help="print the report as JSON")
    migrate.set_defaults(func=_cmd_migrate)

    from tfdl.atlas.command import add_atlas_commands

    add_atlas_commands(commands)

    predict = commands.add_parser("predict", help="send a predict request to a tfdl or TF Serving server")
    predict.add_argument("--url", default="http://127.0.0.1:8501", help="server address")
    predict.add_argument("--model-name", "--model_name", required=True)
    predict.add_argument("--input", required=True,
                         help="a .json request or rows, a .npy array, or inline JSON")
    predict.add_argument("--columnar", action="store_true", help="send the columnar `inputs` format")
    predict.add_argument("--signature-name", default=None)
    predict.add_argument("--version", type=int, default=None)
    predict.add_argument("--label", default=None)
    predict.add_argument("--timeout", type=float, default=30.0)
    predict.add_argument("--compact", action="store_true", help="print the response on one line")
    predict.set_defaults(func=_cmd_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["edge"]:
        # Everything after `edge` (its --help included) belongs to the edge runner.
        return _cmd_edge(argparse.Namespace(edge_args=argv[1:]))
    args = build_parser().parse_args(argv)
    from tfdl.pipelines.errors import DataError
    from tfdl.schema import ConfigError
    from tfdl.training.errors import Preempted, TrainingDiverged

    try:
        return args.func(args)
    except (ConfigError, DataError) as error:
        print(f"tfdl {args.command}: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"tfdl {args.command}: {error}", file=sys.stderr)
        return 3
    except Preempted as error:
        print(f"tfdl {args.command}: {error}", file=sys.stderr)
        return 143  # 128 + SIGTERM, what a platform expects of a terminated job
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
