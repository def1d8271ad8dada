from . import milvus_pb2 as _milvus_pb2
from . import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InsertParamRaw(_message.Message):
    __slots__ = ("collection_name", "row_record_array", "row_id_array", "partition_tag", "extra_params")
    COLLECTION_NAME_FIELD_NUMBER: _ClassVar[int]
    ROW_RECORD_ARRAY_FIELD_NUMBER: _ClassVar[int]
    ROW_ID_ARRAY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TAG_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    collection_name: str
    row_record_array: _containers.RepeatedScalarFieldContainer[bytes]
    row_id_array: _containers.RepeatedScalarFieldContainer[int]
    partition_tag: str
    extra_params: _containers.RepeatedCompositeFieldContainer[_milvus_pb2.KeyValuePair]
    def __init__(self, collection_name: _Optional[str] = ..., row_record_array: _Optional[_Iterable[bytes]] = ..., row_id_array: _Optional[_Iterable[int]] = ..., partition_tag: _Optional[str] = ..., extra_params: _Optional[_Iterable[_Union[_milvus_pb2.KeyValuePair, _Mapping]]] = ...) -> None: ...

class SearchParamRaw(_message.Message):
    __slots__ = ("collection_name", "partition_tag_array", "query_record_array", "topk", "extra_params")
    COLLECTION_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TAG_ARRAY_FIELD_NUMBER: _ClassVar[int]
    QUERY_RECORD_ARRAY_FIELD_NUMBER: _ClassVar[int]
    TOPK_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    collection_name: str
    partition_tag_array: _containers.RepeatedScalarFieldContainer[str]
    query_record_array: _containers.RepeatedScalarFieldContainer[bytes]
    topk: int
    extra_params: _containers.RepeatedCompositeFieldContainer[_milvus_pb2.KeyValuePair]
    def __init__(self, collection_name: _Optional[str] = ..., partition_tag_array: _Optional[_Iterable[str]] = ..., query_record_array: _Optional[_Iterable[bytes]] = ..., topk: _Optional[int] = ..., extra_params: _Optional[_Iterable[_Union[_milvus_pb2.KeyValuePair, _Mapping]]] = ...) -> None: ...

class SearchInFilesParamRaw(_message.Message):
    __slots__ = ("file_id_array", "search_param")
    FILE_ID_ARRAY_FIELD_NUMBER: _ClassVar[int]
    SEARCH_PARAM_FIELD_NUMBER: _ClassVar[int]
    file_id_array: _containers.RepeatedScalarFieldContainer[str]
    search_param: SearchParamRaw
    def __init__(self, file_id_array: _Optional[_Iterable[str]] = ..., search_param: _Optional[_Union[SearchParamRaw, _Mapping]] = ...) -> None: ...

class HInsertParamRaw(_message.Message):
    __slots__ = ("collection_name", "partition_tag", "entities", "entity_id_array", "extra_params")
    COLLECTION_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITION_TAG_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_ARRAY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_PARAMS_FIELD_NUMBER: _ClassVar[int]
    collection_name: str
    partition_tag: str
    entities: HEntityRaw
    entity_id_array: _containers.RepeatedScalarFieldContainer[int]
    extra_params: _containers.RepeatedCompositeFieldContainer[_milvus_pb2.KeyValuePair]
    def __init__(self, collection_name: _Optional[str] = ..., partition_tag: _Optional[str] = ..., entities: _Optional[_Union[HEntityRaw, _Mapping]] = ..., entity_id_array: _Optional[_Iterable[int]] = ..., extra_params: _Optional[_Iterable[_Union[_milvus_pb2.KeyValuePair, _Mapping]]] = ...) -> None: ...

class HEntityRaw(_message.Message):
    __slots__ = ("status", "entity_id", "field_names", "attr_records", "row_num", "result_values")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAMES_FIELD_NUMBER: _ClassVar[int]
    ATTR_RECORDS_FIELD_NUMBER: _ClassVar[int]
    ROW_NUM_FIELD_NUMBER: _ClassVar[int]
    RESULT_VALUES_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    entity_id: int
    field_names: _containers.RepeatedScalarFieldContainer[str]
    attr_records: bytes
    row_num: int
    result_values: _containers.RepeatedCompositeFieldContainer[FieldValueRaw]
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., entity_id: _Optional[int] = ..., field_names: _Optional[_Iterable[str]] = ..., attr_records: _Optional[bytes] = ..., row_num: _Optional[int] = ..., result_values: _Optional[_Iterable[_Union[FieldValueRaw, _Mapping]]] = ...) -> None: ...

class FieldValueRaw(_message.Message):
    __slots__ = ("int32_value", "int64_value", "float_value", "double_value", "string_value", "bool_value", "vector_value")
    INT32_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT64_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    VECTOR_VALUE_FIELD_NUMBER: _ClassVar[int]
    int32_value: int
    int64_value: int
    float_value: float
    double_value: float
    string_value: str
    bool_value: bool
    vector_value: VectorFieldValueRaw
    def __init__(self, int32_value: _Optional[int] = ..., int64_value: _Optional[int] = ..., float_value: _Optional[float] = ..., double_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., vector_value: _Optional[_Union[VectorFieldValueRaw, _Mapping]] = ...) -> None: ...

class VectorFieldValueRaw(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, value: _Optional[_Iterable[bytes]] = ...) -> None: ...
