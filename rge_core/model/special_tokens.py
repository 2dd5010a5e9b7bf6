"""Token strings shared by the model core, the data layer and the tiny-model builder."""

# Ends every sequence that is embedded, and ends generation of a rationale.
EMB_TOKEN = "<emb>"

# Qwen2-VL's chat and vision markers, in the order the real tokenizer adds them.
QWEN_SPECIAL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# What one image becomes in the prompt text; the processor expands `<|image_pad|>` to the patch count.
QWEN_IMAGE_TOKENS = "<|vision_start|><|image_pad|><|vision_end|>"

# Phi-3-V's placeholder, used in every MMEB text that comes with an image.
MMEB_IMAGE_PLACEHOLDER = "<|image_1|>"
