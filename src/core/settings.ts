import { Config, Effect, Option } from "effect"

/**
 * Every environment variable virl reads, read here and nowhere else: through Effect's Config,
 * from the process's environment at the moment it is asked for (a test may set one). An empty
 * value reads as unset, and so does a number that does not parse. docs/configuration.md lists them.
 */
export const ENVIRONMENT_VARIABLES = {
  VIRL_CACHE: "where generated cities, pretraining mixtures and base models are cached (default ~/.cache/virl)",
  VIRL_DATASETS: "a folder of nyc-train/, nyc-eval/ and sf/ in the VIRL_routes layout to run on instead of the synthetic cities",
  VIRL_DB: "the cluster's database URL when --db is not given (keeps a password out of ps)",
  VIRL_CLUSTER_SECRET: "the secret every runner and submitter of a cluster proves it holds before any message is accepted",
  VIRL_CLUSTER_SECRET_FILE: "a file holding that secret (instead of VIRL_CLUSTER_SECRET)",
  VIRL_TILE_THREADS: "threads cutting street views (default: every core up to 4, then all but two up to 12)",
  VIRL_KERNELS: "js: the JavaScript street-view kernels instead of the WebAssembly ones (same bytes)",
  VIRL_LIBM: "js: JavaScript trigonometry instead of the C library's (headings may differ from the reference's in the last bit)",
  VIRL_WEBGPU_FORWARD: "tfjs: the policy through tfjs's WebGPU backend instead of the fused kernels",
  VIRL_GPU_PROFILE: "1: the generative policy's GPU kernels timed one by one, once per graph, printed to stderr (a diagnostic: it perturbs the step it times)",
  VIRL_EXIT_WITH_PARENT: "1 in the processes virl starts (seeds, trials): they stop when their parent dies",
  VIRL_PARENT_SILENCE_S: "in a trial a cluster runner starts: it stops when the runner has sent nothing for this many seconds (stopped, frozen)",
  OPENAI_BASE_URL: "the endpoint of --policy openai:MODEL (default https://api.openai.com/v1)",
  OPENAI_API_KEY: "its key",
  WANDB_API_KEY: "Weights & Biases' key (--wandb, virl sync)",
  WANDB_BASE_URL: "Weights & Biases' server (default https://api.wandb.ai)",
  WANDB_PROJECT: "the W&B project (default virl)",
  WANDB_ENTITY: "the W&B entity",
  HF_TOKEN: "a Hugging Face token for virl data fetch (sent to the hub only)",
  HF_TOKEN_PATH: "a file holding that token (the hub's own tools' variable)",
  HF_HOME: "the hub's folder, whose `token` file huggingface-cli login writes (default XDG_CACHE_HOME/huggingface)",
  XDG_CACHE_HOME: "where HF_HOME defaults to (default ~/.cache)",
  HF_ENDPOINT: "the Hugging Face hub's address for virl data fetch (default https://huggingface.co)"
} as const

export type EnvironmentVariable = keyof typeof ENVIRONMENT_VARIABLES

const read = <A>(config: Config.Config<A>): Option.Option<A> => Effect.runSync(Effect.orElseSucceed(Effect.map(config, Option.some), () => Option.none()))

/** A variable's text, undefined when it is unset or empty. */
export const textSetting = (name: EnvironmentVariable): string | undefined => Option.getOrUndefined(Option.filter(read(Config.string(name)), (v) => v !== ""))

/** A variable's whole number, undefined when it is unset or not one. */
export const integerSetting = (name: EnvironmentVariable): number | undefined => Option.getOrUndefined(read(Config.integer(name)))
