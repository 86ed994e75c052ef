/** A checkpoint folder as the API shows it: identity, lineage, training progress, model config and size. */
import 'reflect-metadata';
import { Field, Float, GraphQLISODateTime, ID, Int, ObjectType } from 'type-graphql';

import type { CheckpointInfo } from '../../../serve/index.ts';

@ObjectType('ModelConfig', { description: "The model's architecture, with the reference project's keys in camelCase." })
export class ModelConfigType {
  @Field(() => Int, { description: 'vocab_size: V.' })
  vocabSize!: number;

  @Field(() => Int, { description: 'num_layers: repetitions of the signature.' })
  numLayers!: number;

  @Field(() => [Int], { description: 'signature: [m, s], mLSTM then sLSTM blocks per layer.' })
  signature!: number[];

  @Field(() => Int, { description: 'inp_dim: d, the residual width.' })
  inpDim!: number;

  @Field(() => Int, { description: 'head_dim: dh.' })
  headDim!: number;

  @Field(() => Int, { description: 'head_num: nh.' })
  headNum!: number;

  @Field(() => [Float], { description: 'p_factor: [pm, ps].' })
  pFactor!: number[];

  @Field(() => Int, { description: 'ker_size: causal convolution taps (0: none).' })
  kerSize!: number;

  @Field(() => Boolean)
  tieWeights!: boolean;
}

@ObjectType('Checkpoint', { description: 'A checkpoint folder under the checkpoints root; its id is the folder name.' })
export class CheckpointType {
  @Field(() => ID)
  id!: string;

  @Field(() => ID, { nullable: true, description: 'The checkpoint this one was trained from.' })
  parent!: string | null;

  @Field(() => ID, { nullable: true })
  runId!: string | null;

  @Field(() => Int)
  step!: number;

  @Field(() => Float)
  tokensSeen!: number;

  @Field(() => Float, { nullable: true })
  trainLoss!: number | null;

  @Field(() => Float, { nullable: true })
  valLoss!: number | null;

  @Field(() => GraphQLISODateTime)
  created!: Date;

  @Field(() => String, { description: 'sha256 of model.safetensors, hex.' })
  sha256!: string;

  @Field(() => String, { description: 'Storage type of the weights: F32 or F16 (BF16, F64 in foreign files).' })
  dtype!: string;

  @Field(() => Float, { description: 'Bytes of every file in the folder.' })
  sizeBytes!: number;

  @Field(() => Boolean, { description: 'The checkpoint the server serves when a request names none.' })
  isDefault!: boolean;

  @Field(() => Boolean, { description: 'True when the folder has no meta.json and these fields were made up from the files.' })
  metaSynthesised!: boolean;

  @Field(() => ModelConfigType)
  config!: ModelConfigType;

  @Field(() => String, { description: 'config.yaml as stored.' })
  configYaml!: string;
}

export function toCheckpointType(info: CheckpointInfo): CheckpointType {
  const { meta, config } = info;
  return Object.assign(new CheckpointType(), {
    id: info.id,
    parent: meta.parent,
    runId: meta.run_id,
    step: meta.step,
    tokensSeen: meta.tokens_seen,
    trainLoss: meta.train_loss,
    valLoss: meta.val_loss,
    created: new Date(meta.created),
    sha256: meta.sha256,
    dtype: meta.dtype,
    sizeBytes: info.sizeBytes,
    isDefault: info.isDefault,
    metaSynthesised: info.metaSynthesised,
    configYaml: info.configYaml,
    config: Object.assign(new ModelConfigType(), {
      vocabSize: config.vocab_size,
      numLayers: config.num_layers,
      signature: [...config.signature],
      inpDim: config.inp_dim,
      headDim: config.head_dim,
      headNum: config.head_num,
      pFactor: [...config.p_factor],
      kerSize: config.ker_size,
      tieWeights: config.tie_weights === true,
    }),
  });
}
