"""The shipped accelerate configs parse, say what s1's setups need, and wrap the right decoder layer."""

from __future__ import annotations

import pytest
from transformers import LlamaConfig, Qwen2Config, Qwen2VLConfig

from s1.train.launch import accelerate_config, decoder_layers, launch_command, load_config, write_config


def test_fsdp_config_is_s1_32b_setup():
    c = load_config("fsdp")
    f = c["fsdp_config"]
    assert c["distributed_type"] == "FSDP" and c["mixed_precision"] == "bf16"
    assert (c["num_machines"], c["num_processes"]) == (2, 16)  # 16 H100s
    assert f["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert f["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert f["fsdp_cpu_ram_efficient_loading"] is True and f["fsdp_sync_module_states"] is True
    assert f["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # a plain HF checkpoint at the end
    # the class named in the file is Qwen2.5-32B's decoder layer
    assert f["fsdp_transformer_layer_cls_to_wrap"] == ",".join(decoder_layers(Qwen2Config()))


def test_zero3_config():
    c = load_config("zero3")
    d = c["deepspeed_config"]
    assert c["distributed_type"] == "DEEPSPEED" and c["mixed_precision"] == "bf16"
    assert d["zero_stage"] == 3 and d["zero3_init_flag"] is True and d["zero3_save_16bit_model"] is True


def _launch_args(path, *extra):
    """The arguments `accelerate launch --config_file path ...` would run with (accelerate's own parsing)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    args = launch_command_parser().parse_args(["--config_file", str(path), *extra, "-m", "s1.cli", "train"])
    return _validate_launch_command(args)[0]


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_fsdp_launch_env_wraps_classes_that_exist_in_the_model(tmp_path, arch):
    from accelerate.utils.dataclasses import get_module_class_from_name
    from accelerate.utils.launch import prepare_multi_gpu_env
    from transformers import LlamaForCausalLM, Qwen2ForCausalLM

    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, vocab_size=64)
    model = (Qwen2ForCausalLM(Qwen2Config(**small)) if arch == "qwen2" else LlamaForCausalLM(LlamaConfig(**small)))
    path = write_config(accelerate_config("fsdp", model=model.config), tmp_path / "fsdp.yaml")
    args = _launch_args(path, "--machine_rank", "1", "--main_process_ip", "10.0.0.1")
    assert (args.num_machines, args.num_processes, args.machine_rank) == (2, 16, 1)  # node 2 of s1's 2 x 8 H100s
    env = prepare_multi_gpu_env(args)
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert env["FSDP_SHARDING_STRATEGY"] == "FULL_SHARD" and env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true" and env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
    # what FSDP's auto-wrap does with the names: find the class in the model (None would wrap nothing)
    for name in env["FSDP_TRANSFORMER_CLS_TO_WRAP"].split(","):
        assert get_module_class_from_name(model, name) is not None


def test_zero3_launch_args():
    args = _launch_args(load_path("zero3"))
    assert args.use_deepspeed and args.zero_stage == 3 and args.mixed_precision == "bf16"
    assert args.zero3_init_flag and args.zero3_save_16bit_model


def load_path(name):
    from s1.train.launch import config_path

    return config_path(name)


@pytest.mark.parametrize(("config", "layers"), [
    (LlamaConfig(), "LlamaDecoderLayer"),
    (Qwen2Config(), "Qwen2DecoderLayer"),
    (Qwen2VLConfig(), "Qwen2VLDecoderLayer,Qwen2VLVisionBlock"),
])
def test_wrap_class_follows_the_model(config, layers):
    c = accelerate_config("fsdp", model=config, nodes=4, gpus_per_node=8)
    assert c["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == layers
    assert (c["num_machines"], c["num_processes"]) == (4, 32)


def test_wrap_class_names_exist_in_the_model():
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM(Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1, vocab_size=64))
    classes = {type(m).__name__ for m in model.modules()}
    assert set(decoder_layers(model.config)) <= classes


def test_multi_node_launch_line():
    line = launch_command("s1/train/configs/fsdp.yaml", ["--preset", "s1", "--model", "M"], nodes=2)
    assert line.startswith("accelerate launch --config_file s1/train/configs/fsdp.yaml --machine_rank $NODE_RANK")
    assert line.endswith("-m s1.cli train --preset s1 --model M")
    assert "$NODE_RANK" not in launch_command("c.yaml", [], nodes=1)


def test_unknown_config_lists_the_allowed():
    with pytest.raises(ValueError, match="allowed: fsdp, zero3"):
        load_config("zero2")
